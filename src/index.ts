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
export { BouncePool, type BouncePoolOptions } from './core/bounce-pool';
export { bouncePolicies, freebsdSgBounce, linuxLegacyBounce, type BouncePolicy } from './fuzz/policies';
export { findCounterexample, formatCounterexample, type Counterexample, type FuzzOptions } from './fuzz/counterexample';
export * from './core/gpa-range';
export * from './core/nvme-prp';
export * from './core/nvme-sgl';
// Integration-component (util) channels: heartbeat, shutdown, timesync, KVP (spec §3.4, §6.4).
export {
  decodeIcMessage, encodeIcMessage, compareVersions, formatVersion, chooseVersions, pickVersion, checkNegotiateResponse,
  decodeNegotiateBody, encodeNegotiateBody, encodeNegotiateResponse, GUEST_FRAMEWORK_VERSIONS, GUEST_MESSAGE_VERSIONS,
  HOST_FRAMEWORK_VERSIONS, HOST_MESSAGE_VERSIONS, decodeHeartbeat, encodeHeartbeat, heartbeatReply, decodeShutdown,
  encodeShutdown, shutdownFlags, shutdownKind, decodeTimesync, encodeTimesync, parentTimeToUnixNs, unixNsToParentTime,
  timesyncFlagNames, TIMESYNC_EPOCH_DELTA, decodeKvpRequest, decodeKvpResponse, encodeKvpRequest, kvpReplyBody, KvpStore,
  RingPipe, createRingPipePair, pumpIc, settleIc, IcGuest, HeartbeatGuest, ShutdownGuest, TimesyncGuest, KvpGuest,
  IcHost, HeartbeatHost, ShutdownHost, TimesyncHost, KvpHost,
  type IcHeader, type IcMessage, type IcVersion, type IcNegotiateBody, type IcServiceName, type IcVersions,
  type ShutdownKind, type ShutdownRequest, type TimeSample, type KvpOperation, type KvpRequest, type KvpResult,
  type KvpValue, type KvpStoreOptions, type IcPipe, type IcPipeMessage, type Pollable, type RingPipeOptions,
  type RingPipeStats, type IcGuestOptions, type IcGuestStats, type ShutdownEvent, type ShutdownGuestOptions,
  type TimeSampleEvent, type TimesyncGuestOptions, type KvpGuestOptions, type IcHostOptions, type IcHostStats,
  type ShutdownOptions, type SendTimeOptions,
} from './vmbus/ic/index';
// Guest memory and the IOMMU (DESIGN "Memory model").
export * from './memory/iommu';
export * as constants from './generated/constants';
