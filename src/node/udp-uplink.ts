// A switch uplink over UDP on the loopback: one Ethernet frame per datagram, the framing of
// QEMU's `-netdev dgram` and of socat's UDP-DATAGRAM address, so a QEMU VM or a TAP device
// bridged by socat joins the switch. Node only (the sgring/node subpath).

import { createSocket, type Socket } from 'node:dgram';
import { SgringError } from '../engine/errors';
import { optionNames } from '../core/args';
import type { PortReceiver, Uplink } from '../devices/netvsc/switch';

export interface UdpUplinkOptions {
  /** Local UDP port to bind (0: any; read `port` after open()). */
  port?: number;
  /** Where frames from the switch go; 'learn' (the default): to whoever sent the last datagram. */
  remote?: { host?: string; port: number } | 'learn';
  /** Local address (default 127.0.0.1). */
  host?: string;
  name?: string;
}

export class UdpUplink implements Uplink {
  readonly name: string;
  readonly counters = { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, dropped: 0, tooShort: 0 };
  private socket: Socket | null = null;
  private remote: { host: string; port: number } | null;
  private readonly learn: boolean;
  private readonly host: string;
  private readonly requestedPort: number;
  private input: ((frame: Uint8Array) => void) | null = null;

  constructor(opts: UdpUplinkOptions = {}) {
    optionNames(opts, ['port', 'remote', 'host', 'name'], 'UdpUplink');
    this.name = opts.name ?? 'uplink0';
    this.host = opts.host ?? '127.0.0.1';
    this.requestedPort = opts.port ?? 0;
    const r = opts.remote ?? 'learn';
    this.learn = r === 'learn';
    if (r !== 'learn' && (!Number.isInteger(r?.port) || r.port < 1 || r.port > 65535)) throw new SgringError('InvalidArgument', 'remote is { host?, port: 1..65535 } or "learn"');
    this.remote = r === 'learn' ? null : { host: r.host ?? '127.0.0.1', port: r.port };
  }

  /** The local port (after open()). */
  get port(): number {
    return this.socket ? this.socket.address().port : this.requestedPort;
  }

  async open(): Promise<void> {
    if (this.socket) return;
    const s = createSocket('udp4');
    this.socket = s;
    s.on('message', (msg, rinfo) => {
      if (msg.length < 14) {
        this.counters.tooShort++;
        return;
      }
      if (this.learn) this.remote = { host: rinfo.address, port: rinfo.port };
      this.counters.framesIn++;
      this.counters.bytesIn += msg.length;
      this.input?.(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(this.requestedPort, this.host, () => resolve());
    });
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  connect(input: (frame: Uint8Array) => void): PortReceiver {
    this.input = input;
    return (frame) => {
      const s = this.socket;
      if (!s || !this.remote) {
        this.counters.dropped++;
        return false;
      }
      s.send(Buffer.from(frame), this.remote.port, this.remote.host); // a copy: the frame is the switch's only for this call
      this.counters.framesOut++;
      this.counters.bytesOut += frame.length;
      return true;
    };
  }
}
