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

export function now(): Time {
  return { ms: Date.now(), ns: 0 };
}
