// How an unexpected value is named in an error message: short, and never '[object Object]'.

/** A short description of a value for an error message. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  return (v as object).constructor?.name ?? 'an object';
}
