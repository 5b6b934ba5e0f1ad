// The guest (VSC) end of the util channels, answering as Linux hv_util.c / hv_kvp.c do: every
// request is answered in place (same header, flags = transaction|response, status set where
// Linux sets it) with the packet's trans_id echoed.
//
// Bad input, per case (hardening §3.2, spec §6.4); every case is counted in `stats.reasons`:
// - framing that cannot be trusted (no pipe/IC header, pipe type != data, a pipe size or
//   icmsgsize beyond the bytes received): dropped, no answer. Linux drops a packet shorter
//   than the headers and ignores the pipe header; this model also refuses inconsistent
//   lengths, as OpenVMM's pipe reader does.
// - negotiate with counts 0, > 100 or beyond the body, or no common version: answered with
//   counts 0/0 and status HV_E_FAIL (Linux answers with counts 0/0 too).
// - a body shorter than its type's fixed struct (heartbeat 8, shutdown 2060, timesync 25/22,
//   KVP per operation): dropped, no answer, as Linux does.
// - an unknown message type: heartbeat/shutdown/timesync answer HV_E_FAIL (§6.4 item 27);
//   KVP drops it (Linux hv_kvp.c returns without answering).
// - KVP key/value fields that are odd, too long, unterminated or not UTF-16, an unknown pool:
//   answered with HV_E_FAIL (the one request fails, hardening P7).

import {
  IC_FLAG_RESPONSE, IC_FLAG_TRANSACTION, IC_MSGTYPE_HEARTBEAT, IC_MSGTYPE_KVP, IC_MSGTYPE_NEGOTIATE,
  IC_MSGTYPE_SHUTDOWN, IC_MSGTYPE_TIMESYNC, IC_STATUS_FAIL, IC_STATUS_NO_MORE_ITEMS, IC_STATUS_NOT_SUPPORTED,
  IC_STATUS_OK, KVP_OP_GET_IP_INFO, KVP_OP_SET_IP_INFO,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { decodeIcMessage, encodeIcMessage, type IcMessage, type IcVersion } from './framing';
import {
  chooseVersions, decodeNegotiateBody, encodeNegotiateResponse, GUEST_FRAMEWORK_VERSIONS, GUEST_MESSAGE_VERSIONS,
  type IcServiceName, type IcVersions,
} from './negotiate';
import {
  decodeHeartbeat, decodeShutdown, decodeTimesync, heartbeatReply, parentTimeToUnixNs, shutdownKind, timesyncFlagNames,
  type ShutdownKind, type TimeSample,
} from './bodies';
import { decodeKvpRequest, kvpHeader, kvpReplyBody, type KvpRequest, type KvpResult } from './kvp';
import { KvpStore } from './kvp-store';
import type { IcPipe, Pollable } from './pipe';

const MESSAGE_TYPE: Record<IcServiceName, number> = {
  heartbeat: IC_MSGTYPE_HEARTBEAT, shutdown: IC_MSGTYPE_SHUTDOWN, timesync: IC_MSGTYPE_TIMESYNC, kvp: IC_MSGTYPE_KVP,
};

export interface IcGuestOptions {
  /** Framework versions supported, any order (default Linux's: 3.0, 1.0). */
  frameworkVersions?: readonly IcVersion[];
  /** Message versions supported (default Linux's list for the service). */
  messageVersions?: readonly IcVersion[];
  /** Answers kept while the TX ring is full; at this many the guest stops reading (default 8). */
  maxPendingReplies?: number;
}

export interface IcGuestStats {
  received: number;
  answered: number;
  /** Messages dropped without an answer. */
  dropped: number;
  /** Requests answered with a failure status. */
  failed: number;
  /** Why messages were dropped or failed: an SgringError code, or 'UnknownMessageType'. */
  reasons: Record<string, number>;
}

/** What a service handler returns: the answer body and, where Linux sets it, the status. */
interface Answer {
  body: Uint8Array;
  status?: number;
  /** Set when the answer is a failure: what to count it under. */
  failure?: string;
  after?: () => void;
}

export abstract class IcGuest implements Pollable {
  readonly service: IcServiceName;
  /** The versions agreed in the last successful negotiation, or null. */
  negotiated: IcVersions | null = null;
  readonly stats: IcGuestStats = { received: 0, answered: 0, dropped: 0, failed: 0, reasons: {} };
  protected readonly pipe: IcPipe;
  private readonly framework: readonly IcVersion[];
  private readonly messages: readonly IcVersion[];
  private readonly maxPending: number;
  private readonly outbox: { payload: Uint8Array; tid: bigint }[] = [];

  protected constructor(pipe: IcPipe, service: IcServiceName, opts: IcGuestOptions = {}) {
    this.pipe = pipe;
    this.service = service;
    this.framework = opts.frameworkVersions ?? GUEST_FRAMEWORK_VERSIONS;
    this.messages = opts.messageVersions ?? GUEST_MESSAGE_VERSIONS[service];
    this.maxPending = Math.max(1, opts.maxPendingReplies ?? 8);
  }

  /** Answers waiting for TX ring space. */
  get pendingReplies(): number {
    return this.outbox.length;
  }

  /**
   * Sends queued answers, then handles up to `budget` incoming messages. Returns the number of
   * messages sent and received. Stops reading while answers are stuck (back-pressure).
   */
  poll(budget = 64): number {
    let n = this.flush();
    for (let i = 0; i < budget && this.outbox.length < this.maxPending; i++) {
      const m = this.pipe.receive();
      if (m === null) break;
      n++;
      this.stats.received++;
      n += this.handle(m.payload, m.transactionId);
    }
    return n + this.flush();
  }

  private flush(): number {
    let sent = 0;
    while (this.outbox.length > 0 && this.pipe.send(this.outbox[0]!.payload, this.outbox[0]!.tid, 0)) {
      this.outbox.shift();
      sent++;
    }
    return sent;
  }

  private count(reason: string, dropped: boolean): void {
    this.stats.reasons[reason] = (this.stats.reasons[reason] ?? 0) + 1;
    if (dropped) this.stats.dropped++;
    else this.stats.failed++;
  }

  /** Handles one message; returns how many answers went out (queued ones included once sent). */
  private handle(payload: Uint8Array, tid: bigint): number {
    let msg: IcMessage;
    try {
      msg = decodeIcMessage(payload);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.count(e.code, true);
      return 0;
    }
    let answer: Answer | null;
    try {
      if (msg.header.messageType === IC_MSGTYPE_NEGOTIATE) answer = this.negotiate(msg);
      else if (msg.header.messageType === MESSAGE_TYPE[this.service]) answer = this.serve(msg);
      else if (this.service === 'kvp') answer = null;
      else answer = { body: msg.body, status: IC_STATUS_FAIL, failure: 'UnknownMessageType' };
      if (answer === null) this.count('UnknownMessageType', true);
    } catch (e) {
      // Decode errors of a body (a short body, §6.4 items 26/28) drop the message, as Linux does.
      if (!(e instanceof SgringError)) throw e;
      this.count(e.code, true);
      return 0;
    }
    if (answer === null) return 0;
    if (answer.failure !== undefined) this.count(answer.failure, false);
    // Linux leaves the host's status in place unless the handler sets one.
    const status = answer.status ?? msg.header.status;
    const out = encodeIcMessage({ ...msg.header, status, flags: IC_FLAG_TRANSACTION | IC_FLAG_RESPONSE }, answer.body);
    this.outbox.push({ payload: out, tid });
    this.stats.answered++;
    const sent = this.flush();
    answer.after?.();
    return sent;
  }

  /** Picks the highest common versions (see negotiate.ts); a bad list fails the negotiation. */
  private negotiate(msg: IcMessage): Answer {
    let chosen: IcVersions | null = null;
    let failure = 'IcNegotiationFailed';
    try {
      chosen = chooseVersions(decodeNegotiateBody(msg.body), this.framework, this.messages);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      failure = e.code;
    }
    if (chosen === null) return { body: encodeNegotiateResponse(null), status: IC_STATUS_FAIL, failure };
    this.negotiated = chosen;
    return { body: encodeNegotiateResponse(chosen), status: IC_STATUS_OK };
  }

  /** The service's answer to a message of its own type; SgringError drops the message. */
  protected abstract serve(msg: IcMessage): Answer | null;
}

/** Heartbeat: answers seq_num + 1 (Linux heartbeat_onchannelcallback). */
export class HeartbeatGuest extends IcGuest {
  /** The last sequence number the host sent. */
  lastSequence: bigint | null = null;

  constructor(pipe: IcPipe, opts: IcGuestOptions = {}) {
    super(pipe, 'heartbeat', opts);
  }

  protected serve(msg: IcMessage): Answer {
    const body = heartbeatReply(msg.body);
    this.lastSequence = decodeHeartbeat(msg.body);
    return { body };
  }
}

export interface ShutdownEvent {
  kind: ShutdownKind;
  force: boolean;
  reasonCode: number;
  timeoutSeconds: number;
  flags: number;
  message: Uint8Array;
}

export interface ShutdownGuestOptions extends IcGuestOptions {
  /** Called after the answer is sent, as Linux schedules the shutdown work after answering. */
  onShutdown?: (e: ShutdownEvent) => void;
  /** Linux answers a hibernate request OK only when the guest can hibernate (default false). */
  hibernationSupported?: boolean;
}

/** Shutdown: flags 0/1 power off, 2/3 reboot, 4/5 hibernate (bit 0 = force); others fail. */
export class ShutdownGuest extends IcGuest {
  private readonly opts: ShutdownGuestOptions;

  constructor(pipe: IcPipe, opts: ShutdownGuestOptions = {}) {
    super(pipe, 'shutdown', opts);
    this.opts = opts;
  }

  protected serve(msg: IcMessage): Answer {
    const req = decodeShutdown(msg.body);
    const k = shutdownKind(req.flags);
    if (k === null) return { body: msg.body, status: IC_STATUS_FAIL, failure: 'UnknownShutdownFlags' };
    if (k.kind === 'hibernate' && !this.opts.hibernationSupported) return { body: msg.body, status: IC_STATUS_FAIL, failure: 'HibernationUnsupported' };
    const event: ShutdownEvent = { ...k, reasonCode: req.reasonCode, timeoutSeconds: req.timeoutSeconds, flags: req.flags, message: req.message };
    return { body: msg.body, status: IC_STATUS_OK, after: () => this.opts.onShutdown?.(event) };
  }
}

export interface TimeSampleEvent extends TimeSample {
  /** parentTime as Unix time in nanoseconds. */
  unixNs: bigint;
  probe: boolean;
  sync: boolean;
  sample: boolean;
}

export interface TimesyncGuestOptions extends IcGuestOptions {
  onTimeSample?: (s: TimeSampleEvent) => void;
}

/**
 * Timesync: exposes each host sample and echoes the message. The layout follows the
 * negotiated message version (4.0 or later: reference-time form); before any negotiation the
 * pre-4.0 layout is used, as Linux does with its version still 0.
 */
export class TimesyncGuest extends IcGuest {
  lastSample: TimeSampleEvent | null = null;
  private readonly opts: TimesyncGuestOptions;

  constructor(pipe: IcPipe, opts: TimesyncGuestOptions = {}) {
    super(pipe, 'timesync', opts);
    this.opts = opts;
  }

  protected serve(msg: IcMessage): Answer {
    const s = decodeTimesync(msg.body, this.negotiated?.message ?? null);
    const event: TimeSampleEvent = { ...s, unixNs: parentTimeToUnixNs(s.parentTime), ...timesyncFlagNames(s.flags) };
    this.lastSample = event;
    return { body: msg.body, after: () => this.opts.onTimeSample?.(event) };
  }
}

export interface KvpGuestOptions extends IcGuestOptions {
  /** The pools (default: a new empty store). */
  store?: KvpStore;
}

/** KVP: GET/SET/DELETE/ENUMERATE against `store`, with the daemon's HV_S_CONT for "no". */
export class KvpGuest extends IcGuest {
  readonly store: KvpStore;

  constructor(pipe: IcPipe, opts: KvpGuestOptions = {}) {
    super(pipe, 'kvp', opts);
    this.store = opts.store ?? new KvpStore();
  }

  protected serve(msg: IcMessage): Answer {
    const { operation } = kvpHeader(msg.body);
    if (operation === KVP_OP_GET_IP_INFO || operation === KVP_OP_SET_IP_INFO) {
      return { body: msg.body, status: IC_STATUS_NOT_SUPPORTED, failure: 'KvpIpInfoUnsupported' };
    }
    let req: KvpRequest;
    try {
      req = decodeKvpRequest(msg.body);
    } catch (e) {
      if (e instanceof SgringError && (e.code === 'IcBadKvpField' || e.code === 'IcUnexpectedMessage')) return { body: msg.body, status: IC_STATUS_FAIL, failure: e.code };
      throw e;
    }
    const no = { body: msg.body, status: IC_STATUS_NO_MORE_ITEMS, failure: 'KvpNoSuchEntry' };
    const yes = (r: KvpResult | null) => ({ body: kvpReplyBody(msg.body, req.operation, r), status: IC_STATUS_OK });
    switch (req.operation) {
      case 'get': {
        const v = this.store.get(req.pool, req.key);
        return v === undefined ? no : yes({ value: { type: 'string', value: v } });
      }
      case 'set': {
        // Linux stores every value as a string: u32 printed with "%d" (so signed), u64 with "%llu".
        const v = req.value;
        const s = v.type === 'u32' ? String(v.value | 0) : String(v.value);
        if (!KvpStore.fits(req.key, s)) return no;
        try {
          this.store.set(req.pool, req.key, s);
        } catch {
          return no;
        }
        return yes(null);
      }
      case 'delete':
        return this.store.delete(req.pool, req.key) ? yes(null) : no;
      case 'enumerate': {
        const e = this.store.at(req.pool, req.index);
        return e === undefined ? no : yes({ key: e[0], value: { type: 'string', value: e[1] } });
      }
    }
  }
}
