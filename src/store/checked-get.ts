/**
 * Fetches an object and checks it (authenticates, parses). A copy that
 * fails the check may have been damaged on the way, so it is fetched again,
 * up to `attempts` copies in all; once two copies in a row are the same
 * bytes, that is what the store holds, and the check's verdict stands.
 * Errors of the fetch itself pass through untouched: retrying those is the
 * store's job.
 */
export async function getChecked<T>(
  fetch: () => Promise<Buffer>,
  check: (data: Buffer) => T | Promise<T>,
  opts: { attempts?: number; onRetry?: (err: unknown) => void } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 3;
  let previous: Buffer | undefined;
  for (let attempt = 1; ; attempt++) {
    const data = await fetch();
    try {
      return await check(data);
    } catch (err) {
      if (attempt >= attempts || previous?.equals(data)) throw err;
      opts.onRetry?.(err);
      previous = data;
    }
  }
}
