import { E_InvalidArgument } from '../generated/constants';
import type { Core } from '../engine/core';
import type { EngineFunctions } from '../engine/types';
import { createReferenceRing } from './ring';

/** The reference engine: every engine function, in plain TypeScript, over the core's memory. */
export function createReferenceEngine(core: Core): EngineFunctions {
  return {
    ...createReferenceRing(core),
    copyLimit(dst: number, src: number, len: number, times: number): number {
      const size = core.byteLength;
      if (!(len <= size && dst <= size - len && src <= size - len)) return E_InvalidArgument;
      const u8 = core.u8;
      for (let i = 0; i < times; i++) u8.copyWithin(dst, src, src + len);
      return 0;
    },
  };
}
