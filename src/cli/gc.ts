import type { CommandModule } from 'yargs';
import { counter } from './progress.js';
import { gc } from '../check/gc.js';
import { UserError } from '../errors.js';
import { storeOptions, type StoreArgs } from './common.js';
import { withMaintenance } from './maintenance.js';

interface GcArgs extends StoreArgs {
  minAge: string;
  dryRun: boolean;
  repackBelow: number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseAge(text: string, option = '--min-age'): number {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  if (!m) throw new UserError(`${option}: "${text}" is not an age like 30m, 24h or 7d`);
  return Number(m[1]) * UNITS[m[2]];
}

const mib = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MiB`;

export const gcCommand: CommandModule<object, GcArgs> = {
  command: 'gc',
  describe: 'Delete objects that nothing in the vault refers to (left by crashes), once they are old enough to be safe',
  builder: (y) => storeOptions(y)
    .option('min-age', { type: 'string', default: '24h', describe: 'Keep unreferenced objects younger than this (a mount elsewhere may be about to commit them)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Only report what would be deleted' })
    .option('repack-below', { type: 'number', default: 50, describe: 'Format 2: rewrite packs whose live data fills less than this percentage of them (0: never)' }) as any,
  handler: async (argv) => {
    const minAgeMs = parseAge(argv.minAge);
    if (!(argv.repackBelow >= 0 && argv.repackBelow <= 100)) throw new UserError('--repack-below is a percentage from 0 to 100');
    const repacking = counter('repacking', 'packs');
    const line = counter('deleting', 'objects');
    const report = await withMaintenance(argv, (session) => gc(session, {
      minAgeMs, dryRun: argv.dryRun, deleted: line.update, repacked: repacking.update, repackBelow: argv.repackBelow / 100,
    })).finally(() => {
      repacking.stop();
      line.stop();
    });
    const { repacked } = report;
    if (repacked.packs) {
      process.stdout.write(`${argv.dryRun ? 'would repack' : 'repacked'} ${repacked.packs} packs (${mib(repacked.bytes)}, of which ${mib(repacked.liveBytes)} still in use)\n`);
    }
    const verb = argv.dryRun ? 'would delete' : 'deleted';
    process.stdout.write(`${verb} ${report.deleted.count} unreferenced objects (${mib(report.deleted.bytes)}) and ${report.staleMetadata} superseded metadata objects\n`);
    if (report.kept.count) process.stdout.write(`kept ${report.kept.count} unreferenced objects younger than ${argv.minAge} (${mib(report.kept.bytes)})\n`);
  },
};
