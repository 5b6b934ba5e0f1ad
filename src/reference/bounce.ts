import type { Core } from '../engine/core';

// (being written)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface BounceFunctions {}

export function createReferenceBounce(_core: Core): BounceFunctions {
  return {};
}
