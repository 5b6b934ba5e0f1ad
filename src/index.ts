// Public API of sgring.
export { loadCore, loadCoreSync, type LoadCoreOptions, type WasmSource } from './engine/load';
export { Core } from './engine/core';
export { SgringError, type SgringErrorCode } from './engine/errors';
export type { EngineFunctions, EngineName } from './engine/types';
export { VmbusRing, type RingPacket, type RingState, type RingWriteResult, type CreateRingOptions } from './core/vmbus-ring';
export { WriteBatch, ReadBatch } from './core/ring-batch';
export type { TransactionId } from './core/tid';
export { Doorbell, canBlock, expectWoken } from './sync/doorbell';
export {
  planPageList, copyToBounce, zeroBounce, copyFromBounce, writeSegments,
  type Segment, type PageRule, type PagePlan, type PlanCopy, type PlanOptions,
} from './core/pagelist';
export { checkPageList, type PageListVerdict } from './core/check-pagelist';
export { bouncePolicies, freebsdSgBounce, linuxLegacyBounce, type BouncePolicy } from './fuzz/policies';
export { findCounterexample, formatCounterexample, type Counterexample, type FuzzOptions } from './fuzz/counterexample';
export * from './core/gpa-range';
export * from './core/nvme-prp';
export * from './core/nvme-sgl';
export * from './memory/iommu';
export * as constants from './generated/constants';
