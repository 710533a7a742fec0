import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { control } from '../control/client.js';
import type { StatusReport } from '../control/protocol.js';
import { UserError } from '../errors.js';
import { controlSocket, liveMountpoints } from '../fuse/mounts.js';
import { humanAgo, humanBytes, humanDuration, plural } from '../util/human.js';

const STATUS_TIMEOUT_MS = 10_000;

interface StatusArgs {
  mountpoint?: string;
  json: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status [mountpoint]',
  describe: 'What the daemon of each mounted drive (or of one) is doing: uploads, cache, store',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', describe: 'One drive (default: every drive this user mounted)' })
    .option('json', { type: 'boolean', default: false, describe: 'One JSON array, for scripts' }) as any,
  handler: async (argv) => {
    const mountpoints = argv.mountpoint ? [path.resolve(argv.mountpoint)] : await liveMountpoints();
    const reports: StatusReport[] = [];
    for (const m of mountpoints) reports.push(await control<StatusReport>(controlSocket(m), { command: 'status' }, undefined, STATUS_TIMEOUT_MS));
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
      return;
    }
    if (reports.length === 0) throw new UserError('no drive is mounted (by this user)');
    process.stdout.write(reports.map(describe).join('\n'));
  },
};

function describe(r: StatusReport): string {
  const { cache, upload } = r;
  const hit = cache.hitRate === null ? 'no reads yet' : `hit rate ${Math.round(cache.hitRate * 100)}%`;
  const pending = upload.pendingObjects === 0
    ? 'everything is in the store'
    : `${plural(upload.pendingObjects, 'object')}, ${humanBytes(upload.pendingBytes)} to go` +
      (upload.bytesPerSecond > 0 ? ` at ${humanBytes(upload.bytesPerSecond)}/s` : ' (not moving)') +
      (upload.etaSeconds !== null ? `, about ${humanDuration(upload.etaSeconds)}` : '');
  const errors = r.storeErrors.length === 0 ? 'no errors' : `last error ${humanAgo(r.storeErrors[r.storeErrors.length - 1].at)}: ${r.storeErrors[r.storeErrors.length - 1].message}`;
  return [
    `${r.mountpoint}${r.readOnly ? ' (read-only)' : ''}: pid ${r.pid}, mounted ${humanAgo(r.mountedSince)}`,
    `  store      ${r.store}, latency ${r.storeLatencyMs === null ? '-' : `${Math.round(r.storeLatencyMs)} ms`}, ${errors}`,
    `  upload     ${pending}`,
    `  committed  ${humanAgo(r.lastCommit)}`,
    `  cache      ${humanBytes(cache.used)} of ${humanBytes(cache.size)}, ${humanBytes(cache.dirtyBytes)} not yet journaled, ${hit}`,
    `  journal    ${humanBytes(r.journalBytes)} on this machine`,
    ...(r.memory ? [`  memory     ${humanBytes(r.memory.residentBytes)} resident; the kernel holds ${plural(r.memory.kernelInodes, 'file')} through it${r.memory.kernelInodeLimit === null ? '' : ` (kept to about ${r.memory.kernelInodeLimit})`}`] : []),
    `  log        ${r.logFile}`,
    '',
  ].join('\n');
}
