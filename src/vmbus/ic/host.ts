// The host (VSP) end of the util channels: negotiates first, then sends one request at a time
// (the IC protocol has at most one transaction outstanding; Linux KVP relies on it) and checks
// every answer before resolving the caller's promise. Header fields follow OpenVMM's host:
// IC transaction id 0, flags transaction|request, negotiate header versions 0.0, service
// headers carrying the negotiated versions.
//
// Bad answers, per case (hardening §3.2 item 16, P7); each is counted in `stats.reasons`:
// - a packet whose trans_id is not the outstanding request's, or any packet while nothing is
//   outstanding: ignored, no callback runs, the request stays pending.
// - an answer to the outstanding request that cannot be decoded, is not a response, has the
//   wrong message type or IC transaction id, a body shorter than required, or contents that do
//   not check out: that request rejects with the SgringError; the channel keeps working.
// - a failure status: IcPeerStatus (details.status), IcNegotiationFailed for a negotiation,
//   except KVP GET/ENUMERATE answering HV_S_CONT, which resolves null ("not found" / "end").
// A guest that never answers leaves the request pending: abort() rejects it (IcAborted).

import {
  IC_FLAG_REQUEST, IC_FLAG_RESPONSE, IC_FLAG_TRANSACTION, IC_MSGTYPE_HEARTBEAT, IC_MSGTYPE_KVP,
  IC_MSGTYPE_NEGOTIATE, IC_MSGTYPE_SHUTDOWN, IC_MSGTYPE_TIMESYNC, IC_STATUS_NO_MORE_ITEMS, IC_STATUS_OK,
  IC_TIMESYNC_FLAG_SAMPLE,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { decodeIcMessage, encodeIcMessage, type IcMessage, type IcVersion } from './framing';
import {
  checkNegotiateResponse, encodeNegotiateBody, HOST_FRAMEWORK_VERSIONS, HOST_MESSAGE_VERSIONS,
  type IcNegotiateBody, type IcServiceName, type IcVersions,
} from './negotiate';
import {
  decodeHeartbeat, encodeHeartbeat, encodeShutdown, encodeTimesync, shutdownFlags, unixNsToParentTime,
  type ShutdownKind,
} from './bodies';
import { decodeKvpResponse, encodeKvpRequest, type KvpOperation, type KvpRequest, type KvpValue } from './kvp';
import type { IcPipe, Pollable } from './pipe';

export interface IcHostOptions {
  /** Framework versions offered, in wire order (default 1.0, 3.0). */
  frameworkVersions?: readonly IcVersion[];
  /** Message versions offered (default per service, see HOST_MESSAGE_VERSIONS). */
  messageVersions?: readonly IcVersion[];
}

export interface IcHostStats {
  sent: number;
  received: number;
  /** Packets ignored (no outstanding request, or another trans_id). */
  ignored: number;
  /** Requests rejected because of the guest's answer. */
  failed: number;
  reasons: Record<string, number>;
}

interface Request {
  type: number;
  /** Builds the body at send time, when the negotiated versions are known. */
  body: (versions: IcVersions | null) => Uint8Array;
  finish: (msg: IcMessage) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  tid: bigint;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export class IcHost implements Pollable {
  readonly service: IcServiceName;
  readonly offered: IcNegotiateBody;
  negotiated: IcVersions | null = null;
  readonly stats: IcHostStats = { sent: 0, received: 0, ignored: 0, failed: 0, reasons: {} };
  protected readonly pipe: IcPipe;
  private readonly queue: Request[] = [];
  private inflight: Request | null = null;
  private nextTid = 1n;

  constructor(pipe: IcPipe, service: IcServiceName, opts: IcHostOptions = {}) {
    this.pipe = pipe;
    this.service = service;
    this.offered = {
      frameworkVersions: [...(opts.frameworkVersions ?? HOST_FRAMEWORK_VERSIONS)],
      messageVersions: [...(opts.messageVersions ?? HOST_MESSAGE_VERSIONS[service])],
    };
  }

  /** Requests queued or outstanding. */
  get pending(): number {
    return this.queue.length + (this.inflight ? 1 : 0);
  }

  /** Offers the version lists; resolves with the pair the guest chose (IcNegotiationFailed otherwise). */
  negotiate(): Promise<IcVersions> {
    return this.request(IC_MSGTYPE_NEGOTIATE, () => encodeNegotiateBody(this.offered), (msg) => {
      if (msg.header.status !== IC_STATUS_OK) {
        throw new SgringError('IcNegotiationFailed', `the guest refused negotiation with status 0x${msg.header.status.toString(16)}`, { status: msg.header.status });
      }
      this.negotiated = checkNegotiateResponse(msg.body, this.offered);
      return this.negotiated;
    });
  }

  /**
   * Queues one request of this channel's message type. `body` runs when the request is sent
   * (after any negotiation queued before it) and `finish` checks the answer.
   */
  protected request<T>(type: number, body: (v: IcVersions | null) => Uint8Array, finish: (msg: IcMessage) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ type, body, finish, resolve: resolve as (v: unknown) => void, reject, tid: 0n });
    });
  }

  /** Resolves when the status is OK, IcPeerStatus otherwise. */
  protected static requireOk(msg: IcMessage): void {
    if (msg.header.status !== IC_STATUS_OK) {
      throw new SgringError('IcPeerStatus', `the guest answered status 0x${msg.header.status.toString(16)}`, { status: msg.header.status });
    }
  }

  /** Handles answers, then sends the next request if none is outstanding. Returns messages moved. */
  poll(budget = 64): number {
    let n = 0;
    for (let i = 0; i < budget; i++) {
      const m = this.pipe.receive();
      if (m === null) break;
      n++;
      this.stats.received++;
      this.onAnswer(m.payload, m.transactionId);
    }
    return n + this.sendNext();
  }

  /** Rejects the outstanding and queued requests with IcAborted; returns how many. */
  abort(reason = 'aborted by the host'): number {
    const all = [...(this.inflight ? [this.inflight] : []), ...this.queue.splice(0)];
    this.inflight = null;
    for (const r of all) r.reject(new SgringError('IcAborted', `IC request ${reason}`));
    return all.length;
  }

  private count(reason: string): void {
    this.stats.reasons[reason] = (this.stats.reasons[reason] ?? 0) + 1;
  }

  private sendNext(): number {
    // Bounded by the queue length: each turn sends the head, or rejects and removes it.
    while (this.inflight === null && this.queue.length > 0) {
      const sent = this.trySend(this.queue[0]!);
      if (sent !== null) return sent;
    }
    return 0;
  }

  /** 1 when sent, 0 when the pipe is full, null when the request was rejected and removed. */
  private trySend(r: Request): number | null {
    let payload: Uint8Array;
    try {
      if (r.type !== IC_MSGTYPE_NEGOTIATE && this.negotiated === null) throw new SgringError('IcNotNegotiated', `negotiate the ${this.service} channel before sending requests`);
      const versions = this.negotiated;
      const zero = { major: 0, minor: 0 };
      payload = encodeIcMessage({
        frameworkVersion: r.type === IC_MSGTYPE_NEGOTIATE ? zero : versions!.framework,
        messageType: r.type,
        messageVersion: r.type === IC_MSGTYPE_NEGOTIATE ? zero : versions!.message,
        status: IC_STATUS_OK,
        transactionId: 0,
        flags: IC_FLAG_TRANSACTION | IC_FLAG_REQUEST,
      }, r.body(versions));
    } catch (e) {
      this.queue.shift();
      r.reject(e);
      return null;
    }
    const tid = this.nextTid;
    if (!this.pipe.send(payload, tid, 0)) return 0;
    // Never 0 (reserved for unsolicited messages, spec §2.3), wrapping within the u64.
    this.nextTid = tid === U64_MAX ? 1n : tid + 1n;
    this.queue.shift();
    r.tid = tid;
    this.inflight = r;
    this.stats.sent++;
    return 1;
  }

  private onAnswer(payload: Uint8Array, tid: bigint): void {
    const r = this.inflight;
    if (r === null || tid !== r.tid) {
      this.stats.ignored++;
      this.count(r === null ? 'NoRequestOutstanding' : 'TransactionIdMismatch');
      return;
    }
    this.inflight = null;
    try {
      const msg = decodeIcMessage(payload);
      const h = msg.header;
      if ((h.flags & IC_FLAG_RESPONSE) === 0) throw new SgringError('IcUnexpectedMessage', `answer flags 0x${h.flags.toString(16)} lack the response bit`, { flags: h.flags });
      if (h.messageType !== r.type) throw new SgringError('IcUnexpectedMessage', `answer of type ${h.messageType} to a request of type ${r.type}`, { messageType: h.messageType });
      if (h.transactionId !== 0) throw new SgringError('IcUnexpectedMessage', `answer IC transaction id ${h.transactionId}, the request had 0`, { transactionId: h.transactionId });
      r.resolve(r.finish(msg));
    } catch (e) {
      this.stats.failed++;
      this.count(e instanceof SgringError ? e.code : 'Error');
      r.reject(e);
    }
  }
}

/** Heartbeat host: each beat sends a sequence number and expects it back plus one. */
export class HeartbeatHost extends IcHost {
  /** The next sequence number to send (the guest's last answer, or 0). */
  sequence = 0n;

  constructor(pipe: IcPipe, opts: IcHostOptions = {}) {
    super(pipe, 'heartbeat', opts);
  }

  /** Resolves with the guest's sequence number (sent + 1). */
  beat(seq?: bigint): Promise<bigint> {
    let sent = 0n;
    return this.request(IC_MSGTYPE_HEARTBEAT, () => encodeHeartbeat(sent = seq ?? this.sequence), (msg) => {
      IcHost.requireOk(msg);
      const got = decodeHeartbeat(msg.body);
      if (got !== ((sent + 1n) & U64_MAX)) throw new SgringError('IcUnexpectedMessage', `heartbeat answered ${got} to ${sent} (expected ${sent + 1n})`, { sent, got });
      this.sequence = got;
      return got;
    });
  }
}

export interface ShutdownOptions {
  kind?: ShutdownKind;
  force?: boolean;
  /** Default SHTDN_REASON_FLAG_PLANNED (0x80000000), as OpenVMM sends. */
  reasonCode?: number;
  timeoutSeconds?: number;
  message?: Uint8Array;
}

export class ShutdownHost extends IcHost {
  constructor(pipe: IcPipe, opts: IcHostOptions = {}) {
    super(pipe, 'shutdown', opts);
  }

  /** Resolves when the guest accepts (status 0); IcPeerStatus when it refuses. */
  shutdown(o: ShutdownOptions = {}): Promise<void> {
    let body: Uint8Array;
    try {
      body = encodeShutdown({
        reasonCode: o.reasonCode ?? 0x80000000, timeoutSeconds: o.timeoutSeconds ?? 0,
        flags: shutdownFlags(o.kind ?? 'poweroff', o.force ?? false), message: o.message,
      });
    } catch (e) {
      return Promise.reject(e);
    }
    return this.request(IC_MSGTYPE_SHUTDOWN, () => body, (msg) => IcHost.requireOk(msg));
  }
}

export interface SendTimeOptions {
  /** Host time in 100 ns since 1601; or give unixNs; default now. */
  parentTime?: bigint;
  unixNs?: bigint;
  /** Default IC_TIMESYNC_FLAG_SAMPLE; IC_TIMESYNC_FLAG_SYNC asks the guest to set its clock. */
  flags?: number;
  /** 4.0 layout: the guest's reference time when the sample was taken. */
  referenceTime?: bigint;
  leapIndicator?: number;
  stratum?: number;
}

export class TimesyncHost extends IcHost {
  constructor(pipe: IcPipe, opts: IcHostOptions = {}) {
    super(pipe, 'timesync', opts);
  }

  /** Sends one time message in the negotiated layout; resolves when the guest echoes it. */
  sendTime(o: SendTimeOptions = {}): Promise<void> {
    const parentTime = o.parentTime ?? unixNsToParentTime(o.unixNs ?? BigInt(Date.now()) * 1_000_000n);
    return this.request(IC_MSGTYPE_TIMESYNC, (v) => encodeTimesync({
      parentTime, flags: o.flags ?? IC_TIMESYNC_FLAG_SAMPLE, referenceTime: o.referenceTime,
      leapIndicator: o.leapIndicator, stratum: o.stratum,
    }, v!.message), (msg) => IcHost.requireOk(msg));
  }
}

export class KvpHost extends IcHost {
  constructor(pipe: IcPipe, opts: IcHostOptions = {}) {
    super(pipe, 'kvp', opts);
  }

  private kvp<T>(req: KvpRequest, done: (msg: IcMessage) => T): Promise<T> {
    // Encoded now, so a key or value that cannot be sent rejects before anything is queued.
    let body: Uint8Array;
    try {
      body = encodeKvpRequest(req);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.request(IC_MSGTYPE_KVP, () => body, done);
  }

  private static result(op: KvpOperation, msg: IcMessage) {
    if (msg.header.status === IC_STATUS_NO_MORE_ITEMS) return null;
    IcHost.requireOk(msg);
    return decodeKvpResponse(op, msg.body);
  }

  /** The value of `key` in `pool`, or null when the guest has none (HV_S_CONT). */
  get(pool: number, key: string): Promise<KvpValue | null> {
    return this.kvp({ operation: 'get', pool, key }, (msg) => KvpHost.result('get', msg)?.value ?? null);
  }

  /** Stores a value (a string is sent as REG_SZ). */
  set(pool: number, key: string, value: KvpValue | string): Promise<void> {
    const v: KvpValue = typeof value === 'string' ? { type: 'string', value } : value;
    return this.kvp({ operation: 'set', pool, key, value: v }, (msg) => IcHost.requireOk(msg));
  }

  delete(pool: number, key: string): Promise<void> {
    return this.kvp({ operation: 'delete', pool, key }, (msg) => IcHost.requireOk(msg));
  }

  /** The index-th pair of `pool`, or null past the end (HV_S_CONT). */
  enumerate(pool: number, index: number): Promise<{ key: string; value: KvpValue } | null> {
    return this.kvp({ operation: 'enumerate', pool, index }, (msg) => {
      const r = KvpHost.result('enumerate', msg);
      return r === null ? null : { key: r.key!, value: r.value! };
    });
  }

  /** Enumerates from index 0 until the guest says "no more", at most `max` entries. */
  async enumerateAll(pool: number, max = 1024): Promise<{ key: string; value: KvpValue }[]> {
    const out: { key: string; value: KvpValue }[] = [];
    for (let i = 0; i < max; i++) {
      const e = await this.enumerate(pool, i);
      if (e === null) break;
      out.push(e);
    }
    return out;
  }
}
