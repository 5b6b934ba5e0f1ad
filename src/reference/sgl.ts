import type { Core } from '../engine/core';

// (being written)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface SglFunctions {}

export function createReferenceSgl(_core: Core): SglFunctions {
  return {};
}
