// Public API of sgring.
export { loadCore, loadCoreSync, type LoadCoreOptions, type WasmSource } from './engine/load';
export { Core, type ExternalGuest } from './engine/core';
export type { HeapStats } from './engine/heap';
export { SgringError, type SgringErrorCode } from './engine/errors';
export type { EngineFunctions, EngineName } from './engine/types';
export { VmbusRing, type RingPacket, type RingState, type RingWriteResult, type CreateRingOptions } from './core/vmbus-ring';
export { frameMessage, unframeMessage, MESSAGE_PREFIX_BYTES } from './core/message';
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
  RingPipe, ChannelPipe, createRingPipePair, pumpIc, settleIc, IcGuest, HeartbeatGuest, ShutdownGuest, TimesyncGuest, KvpGuest,
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
export { ExternalDmaDomain, type ExternalDmaOptions } from './memory/external';
export * as constants from './generated/constants';
// VMBus channels (spec/vmbus.md §2-3): packets, channel messages, GPADLs, offers, both bus ends,
// the guest and host channel ends, transaction ids and the hung-request watchdog.
export {
  normalizeGuid, writeGuid, guidToBytes, readGuid, DEVICE_CLASSES, deviceClassOf, classGuid, instanceGuid,
  type Guid, type DeviceClassName,
} from './vmbus/guid';
export {
  encodeInbandPacket, encodeCompletionPacket, encodeGpaDirectPacket, encodeTransferPagePacket, parsePacket, checkPacketHeader,
  type ParsedPacket, type GpaDescriptor, type TransferPages, type TransferRange,
} from './vmbus/packets';
export { encodeMessage, decodeMessage, messageTypeInfo, MESSAGE_TYPES, type ChannelMessage, type ChannelMessageName } from './vmbus/messages';
export { MessageTransport, MessageEnd, synicPayload, synicSender, type Side } from './vmbus/transport';
export { gpadlMessages, pfnsOf, pfnsContiguous, GpadlTable, type Gpadl, type GpadlLimits, type GpadlVerdict } from './vmbus/gpadl';
export { OfferTable, type Offer, type OfferState } from './vmbus/offers';
export { TransactionTable, InFlightSet, type OutstandingTransaction, type TransactionCounters } from './vmbus/transactions';
export { ReceivedPacket } from './vmbus/received-packet';
export { ChannelSender, type ChannelState, type ChannelStats, type ChannelEndOptions, type CompletionHandler } from './vmbus/channel-send';
export { ChannelEnd } from './vmbus/channel-end';
export { Outbox } from './vmbus/outbox';
export { GuestChannel, initRingPages, type GuestRingLayout } from './vmbus/guest-channel';
export { HostChannel } from './vmbus/host-channel';
export { GuestBus, type GuestBusOptions, type OpenOptions } from './vmbus/guest-bus';
export { HostBus, type HostBusOptions, type HostOffer, type HostOfferSpec } from './vmbus/host-bus';
export { VMBUS_VERSIONS, type DropCounters } from './vmbus/bus-common';
export { bumpPageAllocator, pageAllocator, type FreeingPageAllocator, type PageAllocator, type PageStats } from './vmbus/guest-pages';
export { Watchdog, type WatchdogOptions } from './vmbus/watchdog';
export * from './taps/index';
export * from './trace/index';
export * from './devices/block/index';
export * from './devices/nvme/index';
export * from './devices/scsi/index';
export * from './devices/storvsc/index';
export * from './devices/netvsc/index';
