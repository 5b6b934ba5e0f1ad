// What the parts of the NVMe/TCP target see of each other (target.ts owns the listener and the
// association, connection.ts a queue, discovery.ts the discovery subsystem).

import type { PageAllocator } from '../../../vmbus/guest-pages';
import type { NvmeController } from '../controller';

export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';

export interface NvmeTcpCounters {
  connections: number;
  associations: number;
  commands: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections ended with a C2HTermReq (bad framing, a PDU out of state, a header digest). */
  terminated: number;
  /** Connects refused (unknown subsystem, host, controller id, queue id or size). */
  connectRefused: number;
  /** Commands failed because their data digest did not match. */
  dataDigestErrors: number;
  /** Associations ended because the host's keep-alive timer ran out. */
  keepAliveExpired: number;
  /** Commands failed because no staging pages were left. */
  stagingRefused: number;
  /** Connections ended by an error of the target's own while handling their input. */
  internalErrors: number;
  /** Times a connection stopped taking PDUs because its host did not read what it was sent. */
  outputPauses: number;
}

/** One command from the host, through its data phase to its response. */
export interface FabricCommand {
  hostCid: number;
  sqe: Uint8Array;
  /** Data bytes and direction: 0 none, 1 host to controller, 2 controller to host. */
  length: number;
  dir: number;
  /** Staging: guest pages (controller commands) or a JS buffer (fabrics and discovery). */
  gpa: number;
  listGpa: number;
  js: Uint8Array | null;
  /** H2C bytes received, and the end of the window the current R2T asked for. */
  got: number;
  r2tEnd: number;
  /** A failure found during the data phase (a data digest), reported once the data is in. */
  status: number;
  /** For a command the target issues itself (queue creation): what to do with its CQE. */
  internal?: (cqe: Uint8Array) => void;
}

/** A queue's connection as the target and the discovery controller use it. */
export interface QueueConnection {
  respond(cmd: FabricCommand, status: number, dw0?: number, dw1?: number, data?: Uint8Array): void;
  internal(sqe: Uint8Array, done: (status: number) => void): void;
  reap(qid: number): void;
  shutdown(): void;
}

/** One host's association with the controller: its admin queue connection and its I/O queues. */
export interface Association {
  cntlid: number;
  hostnqn: string;
  kato: number;
  lastSeen: number;
  admin: QueueConnection;
  io: Map<number, QueueConnection>;
  timer: ReturnType<typeof setInterval> | null;
}

export interface Discovery {
  property(conn: QueueConnection, cmd: FabricCommand, set: boolean, offset: number, size: number, value: number): void;
  execute(conn: QueueConnection, cmd: FabricCommand): void;
}

/** What a connection needs of the target. */
export interface TargetContext {
  readonly controller: NvmeController;
  readonly allocPages: PageAllocator;
  readonly subnqn: string;
  readonly maxH2cData: number;
  readonly inCapsuleData: number;
  readonly counters: NvmeTcpCounters;
  readonly association: Association | null;
  readonly owners: Map<number, QueueConnection>;
  readonly discovery: Discovery;
  hostAllowed(hostnqn: string): boolean;
  associate(admin: QueueConnection, hostnqn: string, kato: number): Association | number;
  endAssociation(a: Association): void;
}
