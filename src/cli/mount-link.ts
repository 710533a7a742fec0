import { errorMessage, UserError } from '../errors.js';
import { mountFilesystem } from '../fuse/mount.js';
import { checkMountpoint } from '../fuse/mountpoint.js';
import { heartbeat, registerDaemon, unregisterDaemon } from '../fuse/mounts.js';
import { openLink } from '../share/client.js';
import { parseLink } from '../share/link.js';
import { openLinkDrive } from '../share/link-drive.js';
import { daemonLog } from './log.js';
import { DAEMON_CHILD, detach, passphraseFromParent, tellStarterReady, type MountArgs } from './mount.js';
import { getPassphrase } from './passphrase.js';

/** `veilfs mount LINK MOUNTPOINT`: a share, read-only, through the block cache and readahead of a vault mount. */
export async function mountLink(argv: MountArgs, cacheSize: number): Promise<void> {
  const link = parseLink(argv.target);
  if (!argv.mountpoint) throw new UserError('name where to mount it: veilfs mount LINK MOUNTPOINT');
  const inDaemon = !!process.env[DAEMON_CHILD];
  let password = inDaemon ? await passphraseFromParent() : undefined;
  const ask = async () => (password ??= await getPassphrase({}, { prompt: 'Password for the link: ', envVar: 'VEILFS_SHARE_PASSWORD', fileOption: '$VEILFS_SHARE_PASSWORD' }));
  // In the user's terminal: a revoked link or a wrong password fails here, before detaching.
  const { record, manifest } = await openLink(link, ask);
  if (argv.daemon && !inDaemon) return detach(await checkMountpoint(argv.mountpoint), password ?? '', argv.cacheDir);
  const fs = await openLinkDrive(link, record, manifest, { cacheSize, log: daemonLog });
  const mountpoint = await checkMountpoint(argv.mountpoint);
  const mounted = await mountFilesystem(fs, mountpoint, { readOnly: true, allowOther: argv.allowOther, log: (m) => daemonLog(m, 'error') });
  await registerDaemon(mountpoint);
  const beat = setInterval(() => void heartbeat(mountpoint), 2000);
  beat.unref();
  daemonLog(`mounted the share ${link.id} (${manifest.root.name}) read-only at ${mountpoint} (pid ${process.pid}); it shows the share as it was now`);
  tellStarterReady();
  const stop = (signal: string) => {
    daemonLog(`${signal}: unmounting ${mountpoint}`);
    mounted.unmount().catch((err) => daemonLog(`unmount failed: ${errorMessage(err)}`));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  await mounted.gone;
  clearInterval(beat);
  await unregisterDaemon(mountpoint);
  daemonLog(`unmounted ${mountpoint}`);
  process.exit();
}
