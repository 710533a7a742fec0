import { openForMaintenance, type MaintenanceSession } from '../check/maintenance.js';
import { storeFromArgs, type StoreArgs } from './common.js';
import { getPassphrase } from './passphrase.js';

/** What fsck and gc share: unlock the vault of argv, take this machine's journal, do the work, upload and let go. */
export async function withMaintenance<T>(argv: StoreArgs, work: (session: MaintenanceSession, passphrase: string) => Promise<T>): Promise<T> {
  const store = storeFromArgs(argv);
  try {
    const passphrase = await getPassphrase(argv);
    const session = await openForMaintenance(store, passphrase, argv.cacheDir, (m) => process.stderr.write(`veilfs: ${m}\n`));
    const result = await work(session, passphrase);
    await session.finish();
    return result;
  } finally {
    await store.close?.();
  }
}
