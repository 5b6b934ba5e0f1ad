// Integration-component (util) channels: framing, negotiation, heartbeat, shutdown, timesync
// and KVP, with both ends and the pipe they run over (spec/vmbus.md §3.4, §6.4).
export {
  decodeIcMessage, encodeIcMessage, compareVersions, formatVersion, IC_MAX_BODY,
  type IcHeader, type IcMessage, type IcVersion,
} from './framing';
export {
  chooseVersions, pickVersion, checkNegotiateResponse, decodeNegotiateBody, encodeNegotiateBody, encodeNegotiateResponse,
  GUEST_FRAMEWORK_VERSIONS, GUEST_MESSAGE_VERSIONS, HOST_FRAMEWORK_VERSIONS, HOST_MESSAGE_VERSIONS,
  type IcNegotiateBody, type IcServiceName, type IcVersions,
} from './negotiate';
export {
  decodeHeartbeat, encodeHeartbeat, heartbeatReply, decodeShutdown, encodeShutdown, shutdownFlags, shutdownKind,
  decodeTimesync, encodeTimesync, parentTimeToUnixNs, unixNsToParentTime, timesyncFlagNames, TIMESYNC_EPOCH_DELTA,
  type ShutdownKind, type ShutdownRequest, type TimeSample,
} from './bodies';
export {
  decodeKvpRequest, decodeKvpResponse, encodeKvpRequest, kvpReplyBody, KVP_MAX_KEY_UNITS, KVP_MAX_STRING_UNITS,
  type KvpOperation, type KvpRequest, type KvpResult, type KvpValue,
} from './kvp';
export { KvpStore, type KvpStoreOptions } from './kvp-store';
export {
  RingPipe, createRingPipePair, pumpIc, settleIc,
  type IcPipe, type IcPipeMessage, type Pollable, type RingPipeOptions, type RingPipeStats,
} from './pipe';
export { ChannelPipe } from './channel-pipe';
export {
  IcGuest, HeartbeatGuest, ShutdownGuest, TimesyncGuest, KvpGuest,
  type IcGuestOptions, type IcGuestStats, type ShutdownEvent, type ShutdownGuestOptions, type TimeSampleEvent,
  type TimesyncGuestOptions, type KvpGuestOptions,
} from './guest';
export {
  IcHost, HeartbeatHost, ShutdownHost, TimesyncHost, KvpHost,
  type IcHostOptions, type IcHostStats, type ShutdownOptions, type SendTimeOptions,
} from './host';
