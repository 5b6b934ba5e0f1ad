// How an unexpected value is named in an error message: short, and never '[object Object]'.

/** A short description of a value for an error message. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  return (v as object).constructor?.name ?? 'an object';
}

/**
 * Throws InvalidArgument naming option keys `where` does not know: a misspelt option would
 * otherwise be ignored without a word (`{ sharedd: true }`).
 */
export function checkOptionNames(opts: unknown, known: readonly string[], where: string, make: (msg: string) => Error): void {
  if (opts === null || typeof opts !== 'object') return;
  const unknown = Object.keys(opts).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw make(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; known: ${known.join(', ')}`);
  }
}
