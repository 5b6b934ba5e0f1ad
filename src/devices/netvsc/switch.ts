// A learning Ethernet switch for the network devices: each port is a netvsp (or an uplink) that
// hands the switch the frames its guest sent and takes the frames the switch forwards to it.
// Source addresses are learned per port; broadcast, multicast and unknown unicast frames flood
// to every other port; a frame longer than the MTU allows (plus the Ethernet header and one
// 802.1Q tag) or shorter than an Ethernet header is dropped at the port it came in on.

import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import type { PcapngWriter } from '../../trace/pcapng';

export interface PortCounters {
  /** Frames and bytes the port handed to the switch. */
  inFrames: number;
  inBytes: number;
  /** Frames and bytes the switch forwarded out of the port (accepted by its receiver). */
  outFrames: number;
  outBytes: number;
  /** Frames dropped coming in: too long for the MTU, or shorter than an Ethernet header. */
  oversize: number;
  runt: number;
  /** Frames the port's receiver refused (its guest had no room): counted, not retried. */
  outDropped: number;
}

export interface SwitchPort {
  readonly name: string;
  readonly counters: PortCounters;
  /**
   * Hands a frame to the switch (the frame may be reused after the call returns). `more`: the
   * sender has more frames in this burst and calls VirtualSwitch.flush() at its end, so receiving
   * ports may batch; otherwise the frame is handed on before input returns.
   */
  input(frame: Uint8Array, more?: boolean): void;
  /** Takes the port off the switch and forgets the addresses learned on it. */
  detach(): void;
  /**
   * Records every frame the port hands to the switch and every frame the switch delivers out of
   * it (as tcpdump on an interface would) into `writer`, on an Ethernet interface named
   * `switch:<port>`, until the returned stop() is called.
   */
  capture(writer: PcapngWriter): { stop(): void };
}

/** A port's receiver: takes (copies) one frame; false when it has no room for it now. */
export type PortReceiver = (frame: Uint8Array) => boolean;

/** Something outside the switch that exchanges frames with it through one port (VirtualSwitch.addUplink). */
export interface Uplink {
  readonly name: string;
  /** Called once when added: `input` takes the frames the uplink brings in; returns the receiver of the frames going out. */
  connect(input: (frame: Uint8Array) => void): PortReceiver;
}

const ETH_HEADER = 14;
const VLAN_TAG = 4;

/** The 48-bit MAC at `at` as a number (exact: below 2^53). */
const macKey = (f: Uint8Array, at: number) => f[at]! * 0x10000000000 + f[at + 1]! * 0x100000000 + (((f[at + 2]! << 24) | (f[at + 3]! << 16) | (f[at + 4]! << 8) | f[at + 5]!) >>> 0);

class Port implements SwitchPort {
  readonly counters: PortCounters = { inFrames: 0, inBytes: 0, outFrames: 0, outBytes: 0, oversize: 0, runt: 0, outDropped: 0 };
  attached = true;
  /** Port captures running, each writing frames as they cross (null when none: the common path pays one test). */
  taps: ((frame: Uint8Array) => void)[] | null = null;
  /**
   * The last source address learned on this port and the last destination looked up from it, as
   * the switch's table stood (its version): a stream of frames between the same two stations
   * skips the table (and the 48-bit keys, which are not small integers) until the table changes.
   */
  srcHi = -1;
  srcLo = 0;
  srcVersion = -1;
  dstHi = -1;
  dstLo = 0;
  dstVersion = -1;
  dst: Port | undefined = undefined;

  constructor(readonly name: string, readonly receive: PortReceiver, private readonly sw: VirtualSwitch, readonly flush: (() => void) | null = null) {}

  input(frame: Uint8Array, more = false): void {
    if (!this.attached) return;
    if (this.taps) for (const t of this.taps) t(frame);
    this.sw.forward(this, frame);
    if (!more) this.sw.flush();
  }

  capture(writer: PcapngWriter): { stop(): void } {
    const iface = writer.addInterface({ name: `switch:${this.name}`, description: 'a VirtualSwitch port: frames in and out' });
    const origin = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(performance.now() * 1e6));
    const tap = (frame: Uint8Array) => writer.writePacket(iface, origin + BigInt(Math.round(performance.now() * 1e6)), frame);
    (this.taps ??= []).push(tap);
    return {
      stop: () => {
        const i = this.taps?.indexOf(tap) ?? -1;
        if (i >= 0) this.taps!.splice(i, 1);
        if (this.taps?.length === 0) this.taps = null;
      },
    };
  }

  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.sw.remove(this);
  }

  /** @internal */
  send(frame: Uint8Array): void {
    if (this.receive(frame)) {
      this.counters.outFrames++;
      this.counters.outBytes += frame.length;
      if (this.taps) for (const t of this.taps) t(frame);
    } else this.counters.outDropped++;
  }
}

export interface VirtualSwitchOptions {
  /** Largest payload a frame may carry (default 1500; the frame may add 14 bytes of header and a 4-byte VLAN tag). */
  mtu?: number;
  /** Learned addresses kept at most (default 4096; the oldest is forgotten first). */
  maxAddresses?: number;
}

export class VirtualSwitch {
  readonly mtu: number;
  private readonly maxAddresses: number;
  private readonly ports: Port[] = [];
  /** MAC -> the port it was last seen on. */
  private readonly table = new Map<number, Port>();
  /** Frames flooded (broadcast, multicast, unknown destination) and sent back to their own port (filtered). */
  readonly counters = { flooded: 0, filtered: 0 };

  constructor(opts: VirtualSwitchOptions = {}) {
    optionNames(opts, ['mtu', 'maxAddresses'], 'VirtualSwitch');
    this.mtu = opts.mtu ?? 1500;
    this.maxAddresses = opts.maxAddresses ?? 4096;
    if (!Number.isInteger(this.mtu) || this.mtu < 68 || this.mtu > 65535) throw new SgringError('InvalidArgument', `mtu ${this.mtu} must be 68..65535`);
  }

  /**
   * Adds a port whose frames come in through `input` and go out through `receive`. A port that
   * batches what it receives gives `flush`, called when a sender ends a burst (VirtualSwitch.flush).
   */
  addPort(name: string, receive: PortReceiver, flush?: () => void): SwitchPort {
    if (typeof receive !== 'function') throw new SgringError('InvalidArgument', 'addPort needs a receiver function');
    const p = new Port(name, receive, this, flush ?? null);
    this.ports.push(p);
    return p;
  }

  /**
   * Adds an uplink: a port whose frames come from outside (a socket, a TAP bridge) rather than
   * from a device model. The uplink gets the function that hands its frames to the switch and
   * returns the receiver for the frames the switch forwards to it.
   */
  addUplink(u: Uplink): SwitchPort {
    let port: SwitchPort | null = null;
    const receive = u.connect((frame) => port?.input(frame));
    port = this.addPort(u.name, receive);
    return port;
  }

  /** A sender ended a burst of frames: every port that batches hands on what it holds. */
  flush(): void {
    for (const p of this.ports) p.flush?.();
  }

  /** The ports, in the order they were added. */
  list(): readonly SwitchPort[] {
    return this.ports;
  }

  /** @internal */
  remove(p: Port): void {
    this.ports.splice(this.ports.indexOf(p), 1);
    for (const [mac, q] of this.table) if (q === p) this.table.delete(mac);
    this.version++;
  }

  /** @internal */
  forward(from: Port, frame: Uint8Array): void {
    const c = from.counters;
    const len = frame.length;
    if (len < ETH_HEADER) {
      c.runt++;
      return;
    }
    const tagged = frame[12] === 0x81 && frame[13] === 0x00;
    if (len > this.mtu + ETH_HEADER + (tagged ? VLAN_TAG : 0)) {
      c.oversize++;
      return;
    }
    c.inFrames++;
    c.inBytes += len;
    if ((frame[6]! & 1) === 0) {
      const hi = (frame[6]! << 8) | frame[7]!;
      const lo = (frame[8]! << 24) | (frame[9]! << 16) | (frame[10]! << 8) | frame[11]!;
      if (hi !== from.srcHi || lo !== from.srcLo || from.srcVersion !== this.version) {
        this.learn(macKey(frame, 6), from);
        from.srcHi = hi;
        from.srcLo = lo;
        from.srcVersion = this.version;
      }
    }
    if ((frame[0]! & 1) === 0) {
      const hi = (frame[0]! << 8) | frame[1]!;
      const lo = (frame[2]! << 24) | (frame[3]! << 16) | (frame[4]! << 8) | frame[5]!;
      if (hi !== from.dstHi || lo !== from.dstLo || from.dstVersion !== this.version) {
        from.dst = this.table.get(macKey(frame, 0));
        from.dstHi = hi;
        from.dstLo = lo;
        from.dstVersion = this.version;
      }
      const to = from.dst;
      if (to === from) {
        this.counters.filtered++;
        return;
      }
      if (to) return to.send(frame);
    }
    this.counters.flooded++;
    for (const p of this.ports) if (p !== from) p.send(frame);
  }

  private learn(mac: number, port: Port): void {
    const was = this.table.get(mac);
    if (was === port) return;
    if (was === undefined && this.table.size >= this.maxAddresses) this.table.delete(this.table.keys().next().value!);
    this.table.set(mac, port);
    this.version++;
  }
  /** Changes whenever the table does (the ports' cached lookups compare it). */
  private version = 0;
}
