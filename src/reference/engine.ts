import { E_InvalidArgument } from '../generated/constants';
import type { Core } from '../engine/core';
import type { EngineFunctions } from '../engine/types';
import { createReferenceBounce } from './bounce';
import { createReferenceDma } from './dma';
import { createReferencePageList } from './pagelist';
import { createReferencePrp } from './prp';
import { createReferenceRing } from './ring';
import { createReferenceSgl } from './sgl';

/** The reference engine: every engine function, in plain TypeScript, over the core's memory. */
export function createReferenceEngine(core: Core): EngineFunctions {
  return {
    ...createReferenceRing(core),
    ...createReferenceBounce(core),
    ...createReferencePageList(core),
    ...createReferencePrp(core),
    ...createReferenceSgl(core),
    ...createReferenceDma(core),
    copyLimit(dst: number, dstStride: number, src: number, srcStride: number, len: number, times: number): number {
      if (times === 0) return 0;
      const size = core.byteLength;
      if (dst + (times - 1) * dstStride + len > size || src + (times - 1) * srcStride + len > size) return E_InvalidArgument;
      const u8 = core.u8;
      for (let i = 0; i < times; i++) u8.copyWithin(dst + i * dstStride, src + i * srcStride, src + i * srcStride + len);
      return 0;
    },
  };
}
