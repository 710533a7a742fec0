/**
 * A timestamp as the metadata keeps it: whole milliseconds since the epoch
 * (negative before 1970) plus the nanoseconds within that millisecond, so
 * every value the kernel can hand over (ns resolution, any year a signed
 * 64-bit second count reaches within 2^53 ms) survives unchanged, and
 * records written before nanoseconds were kept still read the same.
 */
export interface Time {
  ms: number;
  ns: number; // 0 … 999,999
}

export function fromTimespec(sec: number, nsec: number): Time {
  const ms = sec * 1000 + Math.floor(nsec / 1e6);
  return { ms, ns: nsec % 1e6 };
}

export function toTimespec(t: Time): [number, number] {
  const sec = Math.floor(t.ms / 1000);
  return [sec, (t.ms - sec * 1000) * 1e6 + t.ns];
}

let last: Time = { ms: 0, ns: 0 };

/**
 * The wall clock, made strictly increasing: two changes in one millisecond
 * get times a nanosecond apart, so "changed since" comparisons (relatime,
 * make, rsync) see the order in which things happened, as they would with
 * the kernel's nanosecond clock.
 */
export function now(): Time {
  const ms = Date.now();
  if (ms > last.ms) last = { ms, ns: 0 };
  else last = last.ns < 999_999 ? { ms: last.ms, ns: last.ns + 1 } : { ms: last.ms + 1, ns: 0 };
  return last;
}
