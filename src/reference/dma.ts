import type { Core } from '../engine/core';

// (being written: GuestMemory and Iommu DMA, issue 4)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface DmaFunctions {}

export function createReferenceDma(_core: Core): DmaFunctions {
  return {};
}
