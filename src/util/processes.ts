import { promises as fs } from 'node:fs';

/** /proc/PID/stat's fields from the third (the state) on, or undefined once the process is gone. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Running, and not a zombie waiting to be reaped (a zombie answers kill(pid, 0) too). */
export async function processRunning(pid: number): Promise<boolean> {
  const state = (await statFields(pid))?.[0];
  return state !== undefined && state !== 'Z';
}

/**
 * A running process as "PID STARTTIME" (clock ticks since boot, the 22nd
 * field of /proc/PID/stat): unlike a bare pid, it never names a later
 * process that was given the same pid.
 */
export async function processIdentity(pid = process.pid): Promise<string> {
  const started = (await statFields(pid))?.[19];
  return started ? `${pid} ${started}` : `${pid}`;
}

/**
 * The pid an identity (from processIdentity, or a bare pid written by an
 * earlier version) names, if that process still runs. A bare pid is taken
 * at its word only when `bareAccepted` agrees.
 */
export async function runningProcess(identity: string, bareAccepted: (pid: number) => Promise<boolean>): Promise<number | undefined> {
  const [pidText, started] = identity.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !(await processRunning(pid))) return undefined;
  if (started !== undefined) return (await statFields(pid))?.[19] === started ? pid : undefined;
  return (await bareAccepted(pid)) ? pid : undefined;
}
