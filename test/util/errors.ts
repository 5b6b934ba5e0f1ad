import { expect } from 'vitest';
import { SgringError } from '../../src/index';

/** Runs fn, requires an SgringError with `code`, and returns it. */
export function expectCode(fn: () => unknown, code: string): SgringError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected SgringError ${code}`).toBeInstanceOf(SgringError);
  expect((err as SgringError).code).toBe(code);
  return err as SgringError;
}

/** The code of the SgringError fn throws, or 'no error'; anything else thrown fails the test. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SgringError);
    return (e as SgringError).code;
  }
  return 'no error';
}
