import type { Core } from '../engine/core';

// (being written)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PageListFunctions {}

export function createReferencePageList(_core: Core): PageListFunctions {
  return {};
}
