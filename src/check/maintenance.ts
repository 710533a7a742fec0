import { journalDir, vaultStateDir } from '../drive.js';
import { UserError } from '../errors.js';
import { subkey } from '../crypto/keys.js';
import { unlockVault, type VaultHeader } from '../format/vault.js';
import { JournaledStore } from '../journal/journaled-store.js';
import { LocalState } from '../meta/local-state.js';
import { MetaLog } from '../meta/metalog.js';
import type { ObjectStore } from '../store/types.js';

export interface MaintenanceSession {
  header: VaultHeader;
  /** The store, through this machine's journal (empty when the session starts). */
  store: ObjectStore;
  /** The store itself, behind the journal: for the one put that must follow everything journaled (upgrade's header). */
  remote: ObjectStore;
  masterKey: Buffer;
  /** Uploads everything journaled so far; false if the store stopped taking uploads. */
  drain(): Promise<boolean>;
  log: MetaLog;
  localState: LocalState;
  /** Uploads what the session wrote and lets go of the vault. */
  finish(): Promise<void>;
}

/**
 * fsck and gc work on the store, so they first make it complete: they take
 * this machine's journal (which fails while the vault is mounted here) and
 * upload whatever an earlier mount left in it.
 */
export async function openForMaintenance(remote: ObjectStore, passphrase: string, cacheDir: string | undefined, say: (m: string) => void): Promise<MaintenanceSession> {
  const { header, masterKey } = await unlockVault(remote, passphrase);
  const stateDir = vaultStateDir(cacheDir, header.vaultId);
  const journal = await JournaledStore.open(remote, { dir: journalDir(stateDir), log: say });
  const finish = async () => {
    try {
      if (!(await journal.drain(60_000))) throw new UserError('the store does not take uploads; what this command wrote stays in the local journal and is uploaded by the next mount');
    } finally {
      await journal.close();
    }
  };
  if (!(await journal.drain(60_000))) {
    await journal.close();
    throw new UserError(`${journal.backlog.entries} changes from an earlier mount wait in this machine's journal and the store does not take them; try again when it does`);
  }
  const localState = new LocalState(stateDir);
  const log = new MetaLog(journal, subkey(masterKey, 'metadata'), header, localState, journal);
  // Changes a killed mount journaled but never committed belong to the next mount, not to us.
  if (await log.uncommittedNotes()) {
    await journal.close();
    throw new UserError('a mount that did not finish left uncommitted changes in this machine\'s journal: mount the vault once (and unmount it) to commit them, then run this again');
  }
  journal.dropNotes();
  return { header, store: journal, remote, masterKey, drain: () => journal.drain(60_000), log, localState, finish };
}
