// Shared by the memory tests.
import { expect } from 'vitest';
import { SgringError } from '../../src/index';

/** Runs fn, expects a non-breaking SgringError with `code`, and returns it. */
export function expectCode(fn: () => unknown, code: string): SgringError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected SgringError ${code}`).toBeInstanceOf(SgringError);
  expect((err as SgringError).code).toBe(code);
  expect((err as SgringError).broken).toBe(false);
  return err as SgringError;
}
