// Fixed-layout bodies of the heartbeat, shutdown and timesync services (spec/vmbus.md §3.4;
// minimum lengths per §6.4 items 26 and 28 as hardened Linux applies them in hv_util.c).
// 64-bit fields are bigints: these are control messages, not a hot path.

import {
  IC_HEARTBEAT_BODY_SIZE, IC_HEARTBEAT_MIN_BODY, IC_SHUTDOWN_BODY_SIZE, IC_SHUTDOWN_FLAG_FORCE,
  IC_SHUTDOWN_FLAG_HIBERNATE, IC_SHUTDOWN_FLAG_RESTART, IC_SHUTDOWN_MESSAGE_SIZE, IC_SHUTDOWN_OFF_FLAGS,
  IC_SHUTDOWN_OFF_MESSAGE, IC_SHUTDOWN_OFF_REASON, IC_SHUTDOWN_OFF_TIMEOUT, IC_TIMESYNC_FLAG_SAMPLE,
  IC_TIMESYNC_FLAG_SYNC, IC_TIMESYNC_V3_BODY_SIZE, IC_TIMESYNC_V3_MIN_BODY, IC_TIMESYNC_V3_OFF_FLAGS,
  IC_TIMESYNC_V4_BODY_SIZE, IC_TIMESYNC_V4_MIN_BODY, IC_TIMESYNC_V4_OFF_FLAGS,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { requireBody, viewOf, type IcVersion } from './framing';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function checkU64(x: bigint, what: string): bigint {
  if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) throw new SgringError('InvalidArgument', `${what} ${x} is not a u64`);
  return x;
}

function checkU32(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new SgringError('InvalidArgument', `${what} ${x} is not a u32`);
  return x;
}

function checkU8(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x > 0xff) throw new SgringError('InvalidArgument', `${what} ${x} is not a u8`);
  return x;
}

// ---- heartbeat: { seq_num u64, reserved u32[8] } ----

/** Heartbeat body of 40 bytes with `seq` and zeroed reserved words. */
export function encodeHeartbeat(seq: bigint): Uint8Array {
  const out = new Uint8Array(IC_HEARTBEAT_BODY_SIZE);
  viewOf(out).setBigUint64(0, checkU64(seq, 'sequence number'), true);
  return out;
}

/** seq_num of a heartbeat body; only its 8 bytes are required (IcTruncated otherwise). */
export function decodeHeartbeat(body: Uint8Array): bigint {
  requireBody(body, IC_HEARTBEAT_MIN_BODY, 'heartbeat');
  return viewOf(body).getBigUint64(0, true);
}

/** The guest's answer: the same body with seq_num + 1 (mod 2^64), as Linux and FreeBSD do. */
export function heartbeatReply(body: Uint8Array): Uint8Array {
  const out = body.slice();
  viewOf(out).setBigUint64(0, (decodeHeartbeat(body) + 1n) & U64_MAX, true);
  return out;
}

// ---- shutdown: { reason u32, timeout u32, flags u32, message[2048] } ----

export type ShutdownKind = 'poweroff' | 'reboot' | 'hibernate';

export interface ShutdownRequest {
  /** Reason code (OpenVMM sends SHTDN_REASON_FLAG_PLANNED = 0x80000000). */
  reasonCode: number;
  timeoutSeconds: number;
  /** Raw flags: bit 0 force, bit 1 restart, bit 2 hibernate. */
  flags: number;
  /** 2048 message bytes as sent (encoding not specified by any source read; zeros from OpenVMM). */
  message: Uint8Array;
}

/** Flags for a request: force may be OR-ed into any kind (Linux treats 0/1, 2/3, 4/5 alike). */
export function shutdownFlags(kind: ShutdownKind, force = false): number {
  const k = kind === 'reboot' ? IC_SHUTDOWN_FLAG_RESTART : kind === 'hibernate' ? IC_SHUTDOWN_FLAG_HIBERNATE : 0;
  return k | (force ? IC_SHUTDOWN_FLAG_FORCE : 0);
}

/** What Linux does for a flags word: one of the three kinds, or null for any other value. */
export function shutdownKind(flags: number): { kind: ShutdownKind; force: boolean } | null {
  const force = (flags & IC_SHUTDOWN_FLAG_FORCE) !== 0;
  switch (flags & ~IC_SHUTDOWN_FLAG_FORCE) {
    case 0: return { kind: 'poweroff', force };
    case IC_SHUTDOWN_FLAG_RESTART: return { kind: 'reboot', force };
    case IC_SHUTDOWN_FLAG_HIBERNATE: return { kind: 'hibernate', force };
    default: return null;
  }
}

export function encodeShutdown(r: Partial<ShutdownRequest> & { flags: number }): Uint8Array {
  const out = new Uint8Array(IC_SHUTDOWN_BODY_SIZE);
  const d = viewOf(out);
  d.setUint32(IC_SHUTDOWN_OFF_REASON, checkU32(r.reasonCode ?? 0, 'reason code'), true);
  d.setUint32(IC_SHUTDOWN_OFF_TIMEOUT, checkU32(r.timeoutSeconds ?? 0, 'timeout'), true);
  d.setUint32(IC_SHUTDOWN_OFF_FLAGS, checkU32(r.flags, 'flags'), true);
  const msg = r.message ?? new Uint8Array(0);
  if (msg.length > IC_SHUTDOWN_MESSAGE_SIZE) throw new SgringError('InvalidArgument', `shutdown message of ${msg.length} bytes exceeds ${IC_SHUTDOWN_MESSAGE_SIZE}`);
  out.set(msg, IC_SHUTDOWN_OFF_MESSAGE);
  return out;
}

/** Decodes a shutdown body; the whole 2060-byte struct is required, as in Linux (IcTruncated). */
export function decodeShutdown(body: Uint8Array): ShutdownRequest {
  requireBody(body, IC_SHUTDOWN_BODY_SIZE, 'shutdown');
  const d = viewOf(body);
  return {
    reasonCode: d.getUint32(IC_SHUTDOWN_OFF_REASON, true),
    timeoutSeconds: d.getUint32(IC_SHUTDOWN_OFF_TIMEOUT, true),
    flags: d.getUint32(IC_SHUTDOWN_OFF_FLAGS, true),
    message: body.slice(IC_SHUTDOWN_OFF_MESSAGE, IC_SHUTDOWN_OFF_MESSAGE + IC_SHUTDOWN_MESSAGE_SIZE),
  };
}

// ---- timesync ----

/** 100 ns intervals from 1601-01-01 to 1970-01-01 (Linux WLTIMEDELTA, FreeBSD VMBUS_ICMSG_TS_BASE). */
export const TIMESYNC_EPOCH_DELTA = 116444736000000000n;

/** Host time (100 ns since 1601) -> Unix time in nanoseconds (may be negative before 1970). */
export function parentTimeToUnixNs(parentTime: bigint): bigint {
  return (parentTime - TIMESYNC_EPOCH_DELTA) * 100n;
}

/** Unix time in nanoseconds -> host time (100 ns since 1601), truncated to 100 ns. */
export function unixNsToParentTime(unixNs: bigint): bigint {
  return unixNs / 100n + TIMESYNC_EPOCH_DELTA;
}

/**
 * One time message. Before message version 4 the body carries child time and round-trip time;
 * from 4.0 on it carries the VM reference time (the guest's Hyper-V clock when the host took
 * the sample) and NTP leap/stratum bytes instead.
 */
export interface TimeSample {
  /** 100 ns since 1601-01-01 UTC. */
  parentTime: bigint;
  /** flags: 0 probe, bit 0 sync (a hard request to set the clock), bit 1 sample (a hint). */
  flags: number;
  /** Version >= 4 only. */
  referenceTime?: bigint;
  leapIndicator?: number;
  stratum?: number;
  /** Version < 4 only. */
  childTime?: bigint;
  roundTripTime?: bigint;
}

/** True when the negotiated message version uses the 4.0 layout. */
export function timesyncV4(version: IcVersion | null | undefined): boolean {
  return version != null && version.major >= 4;
}

export function encodeTimesync(s: TimeSample, version: IcVersion): Uint8Array {
  checkU8(s.flags, 'timesync flags');
  if (timesyncV4(version)) {
    const out = new Uint8Array(IC_TIMESYNC_V4_BODY_SIZE);
    const d = viewOf(out);
    d.setBigUint64(0, checkU64(s.parentTime, 'parent time'), true);
    d.setBigUint64(8, checkU64(s.referenceTime ?? 0n, 'reference time'), true);
    out[IC_TIMESYNC_V4_OFF_FLAGS] = s.flags;
    out[IC_TIMESYNC_V4_OFF_FLAGS + 1] = checkU8(s.leapIndicator ?? 0, 'leap indicator');
    out[IC_TIMESYNC_V4_OFF_FLAGS + 2] = checkU8(s.stratum ?? 0, 'stratum');
    return out;
  }
  const out = new Uint8Array(IC_TIMESYNC_V3_BODY_SIZE);
  const d = viewOf(out);
  d.setBigUint64(0, checkU64(s.parentTime, 'parent time'), true);
  d.setBigUint64(8, checkU64(s.childTime ?? 0n, 'child time'), true);
  d.setBigUint64(16, checkU64(s.roundTripTime ?? 0n, 'round-trip time'), true);
  out[IC_TIMESYNC_V3_OFF_FLAGS] = s.flags;
  return out;
}

/**
 * Decodes a timesync body in the layout of `version`. Minimums are Linux's struct sizes
 * (25 bytes before 4.0, 22 from 4.0; OpenVMM sends 28 and 24 with reserved tails).
 */
export function decodeTimesync(body: Uint8Array, version: IcVersion | null): TimeSample {
  const d = viewOf(body);
  if (timesyncV4(version)) {
    requireBody(body, IC_TIMESYNC_V4_MIN_BODY, 'timesync 4.0');
    return {
      parentTime: d.getBigUint64(0, true),
      referenceTime: d.getBigUint64(8, true),
      flags: body[IC_TIMESYNC_V4_OFF_FLAGS]!,
      leapIndicator: body[IC_TIMESYNC_V4_OFF_FLAGS + 1]!,
      stratum: body[IC_TIMESYNC_V4_OFF_FLAGS + 2]!,
    };
  }
  requireBody(body, IC_TIMESYNC_V3_MIN_BODY, 'timesync');
  return {
    parentTime: d.getBigUint64(0, true),
    childTime: d.getBigUint64(8, true),
    roundTripTime: d.getBigUint64(16, true),
    flags: body[IC_TIMESYNC_V3_OFF_FLAGS]!,
  };
}

/** Names the flag bits (probe = no bit set). */
export function timesyncFlagNames(flags: number): { probe: boolean; sync: boolean; sample: boolean } {
  return { probe: flags === 0, sync: (flags & IC_TIMESYNC_FLAG_SYNC) !== 0, sample: (flags & IC_TIMESYNC_FLAG_SAMPLE) !== 0 };
}
