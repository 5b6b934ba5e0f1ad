import type { Core } from '../engine/core';

// (being written)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PrpFunctions {}

export function createReferencePrp(_core: Core): PrpFunctions {
  return {};
}
