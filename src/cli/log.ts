/** Daemon log lines go to stderr with a timestamp. */
export function daemonLog(message: string): void {
  process.stderr.write(`${new Date().toISOString()} veilfs: ${message}\n`);
}
