// An NVMe/TCP target (Node): serves an NvmeController to NVMe/TCP hosts such as Linux's nvme-tcp.
//
// The controller runs every command itself, through its own queues: for each host queue the
// target keeps a real SQ/CQ pair in guest memory (the admin pair set up through AQA/ASQ/ACQ at
// Connect, I/O pairs created with Create I/O CQ/SQ on the admin queue), stages each command's
// data in guest pages it describes with PRPs, writes the SQE, rings the doorbell and turns each
// CQE back into C2HData + CapsuleResp. So taps, injectors and traces act on fabric commands
// exactly as on PCIe ones. Fabrics commands (Connect, Property Get/Set, Disconnect), Keep Alive
// and the discovery subsystem are answered here. Bad input follows spec/hardening.md §3.10.

import type { Socket } from 'node:net';
import { SgringError } from '../../../engine/errors';
import { optionNames } from '../../../core/args';
import type { PageAllocator } from '../../../vmbus/guest-pages';
import type { NvmeController } from '../controller';
import { NVME_SC } from '../status';
import { TcpListener } from '../../tcp-listener';
import { Connection } from './connection';
import { DiscoveryController } from './discovery';
import { DISCOVERY_NQN, type Association, type NvmeTcpCounters, type QueueConnection, type TargetContext } from './types';

export { DISCOVERY_NQN, type NvmeTcpCounters };

export interface NvmeTcpTargetOptions {
  /** The controller to serve (one host association at a time; its namespaces are the subsystem's). */
  controller: NvmeController;
  /** Guest pages for the fabric-side queues and data staging; the controller's DMA domain must reach them. */
  allocPages: PageAllocator;
  /** Subsystem NQN (default nqn.2026-12.io.sgring:<controller name>). */
  subnqn?: string;
  /** Host NQNs allowed to connect (default: any). */
  hosts?: string[];
  /** TCP port (default 4420; 0 picks a free one: read `port` after listen()). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Most bytes one H2CData PDU may carry (MAXH2CDATA, default 128 KiB). */
  maxH2cData?: number;
  /** In-capsule data accepted with a command (default 8192 bytes; IOCCSZ = 4 + this / 16). */
  inCapsuleData?: number;
}

export class NvmeTcpTarget implements TargetContext {
  readonly controller: NvmeController;
  readonly allocPages: PageAllocator;
  readonly subnqn: string;
  readonly maxH2cData: number;
  readonly inCapsuleData: number;
  readonly counters: NvmeTcpCounters = { connections: 0, associations: 0, commands: 0, bytesIn: 0, bytesOut: 0, terminated: 0, connectRefused: 0, dataDigestErrors: 0, keepAliveExpired: 0, stagingRefused: 0, internalErrors: 0, outputPauses: 0 };
  /** The association now bound to the controller, if any. */
  association: Association | null = null;
  readonly discovery: DiscoveryController;
  private readonly hosts: Set<string> | null;
  private readonly listener: TcpListener;
  private nextCntlid = 1;
  /** Controller queue id -> the connection that owns it (for completions). */
  readonly owners = new Map<number, QueueConnection>();

  constructor(opts: NvmeTcpTargetOptions) {
    optionNames(opts, ['controller', 'allocPages', 'subnqn', 'hosts', 'port', 'host', 'maxH2cData', 'inCapsuleData'], 'NvmeTcpTarget');
    if (!opts?.controller || typeof opts.controller.mmioWrite !== 'function') throw new SgringError('InvalidArgument', 'NvmeTcpTarget needs controller: an NvmeController');
    if (typeof opts.allocPages !== 'function') throw new SgringError('InvalidArgument', 'NvmeTcpTarget needs allocPages (pageAllocator(core))');
    const int = (v: number | undefined, d: number, lo: number, hi: number, what: string) => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < lo || x > hi || x % 4 !== 0) throw new SgringError('InvalidArgument', `NvmeTcpTarget: ${what} ${String(v)} must be a multiple of 4 in [${lo}, ${hi}]`);
      return x;
    };
    this.controller = opts.controller;
    this.allocPages = opts.allocPages;
    this.subnqn = opts.subnqn ?? `nqn.2026-12.io.sgring:${opts.controller.name}`;
    if (this.subnqn.length > 223 || this.subnqn === DISCOVERY_NQN) throw new SgringError('InvalidArgument', `NvmeTcpTarget: subnqn ${this.subnqn} is not a usable subsystem NQN`);
    this.hosts = opts.hosts ? new Set(opts.hosts) : null;
    this.listener = new TcpListener(opts.port ?? 4420, opts.host ?? '127.0.0.1', (s) => this.accept(s));
    this.maxH2cData = int(opts.maxH2cData, 128 * 1024, 4096, 16 << 20, 'maxH2cData');
    this.inCapsuleData = int(opts.inCapsuleData, 8192, 1024, 1 << 20, 'inCapsuleData');
    this.discovery = new DiscoveryController(this);
    const previous = this.controller.onInterrupt;
    this.controller.onInterrupt = (v) => {
      previous?.(v);
      this.owners.get(v)?.reap(v);
    };
  }

  /** The port it listens on (after listen()). */
  get port(): number {
    return this.listener.port;
  }

  get address(): string {
    return this.listener.host;
  }

  listen(): Promise<void> {
    return this.listener.listen();
  }

  /** Ends every association and connection and stops listening. */
  async close(): Promise<void> {
    if (this.association) this.endAssociation(this.association);
    await this.listener.close();
  }

  private accept(socket: Socket): void {
    this.counters.connections++;
    const conn = new Connection(this, socket);
    socket.on('data', (chunk: Buffer) => {
      this.counters.bytesIn += chunk.length;
      conn.receive(chunk);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => conn.shutdown()); // the host went away
  }

  // ---- associations (called by connections) ----

  /** May `hostnqn` connect? */
  hostAllowed(hostnqn: string): boolean {
    return this.hosts === null || this.hosts.has(hostnqn);
  }

  /** A new association for an admin queue Connect, or a status when the controller is taken. */
  associate(admin: QueueConnection, hostnqn: string, kato: number): Association | number {
    if (this.association) return NVME_SC.controllerBusy;
    const cntlid = this.nextCntlid;
    this.nextCntlid = (this.nextCntlid % 0xffef) + 1; // 1..0xFFEF: the dynamic range
    const a: Association = { cntlid, hostnqn, kato, lastSeen: performance.now(), admin, io: new Map(), timer: null };
    this.association = a;
    this.counters.associations++;
    this.controller.fabrics = { cntlid, subnqn: this.subnqn, ioccsz: 4 + this.inCapsuleData / 16, iorcsz: 1, kas: 10 };
    if (kato > 0) {
      a.timer = setInterval(() => {
        if (performance.now() - a.lastSeen > kato + 1000) {
          this.counters.keepAliveExpired++;
          this.endAssociation(a);
        }
      }, Math.max(100, kato / 2));
      (a.timer as { unref?: () => void }).unref?.();
    }
    return a;
  }

  /** Ends an association: its connections close, the controller is reset, its pages go back. */
  endAssociation(a: Association): void {
    if (this.association !== a) return;
    this.association = null;
    if (a.timer) clearInterval(a.timer);
    for (const c of a.io.values()) c.shutdown();
    a.admin.shutdown();
    this.owners.clear();
    this.controller.mmioWrite(0x14, 4, 0); // CC.EN = 0: every queue, command and event forgotten
    this.controller.fabrics = null;
  }
}
