// A promise for a per-command path: `new Promise(capture)` leaves the promise's settle functions
// in `settle`, so the caller keeps them in its own command record and no closure is made per
// promise. Read them right after the constructor returns (the next promise overwrites them).

export const settle = {
  resolve: (_v: unknown): void => {},
  reject: (_e: unknown): void => {},
};

export function capture(resolve: (v: never) => void, reject: (e: unknown) => void): void {
  settle.resolve = resolve as (v: unknown) => void;
  settle.reject = reject;
}
