// How a device's events become frames in a trace. Each device declares one encoder with its
// stages (TapRegistry.declare); a trace tap asks it for the frames of every event it records.

import type { IoKind, TapCompletion } from '../taps/event';

/** One event at a stage, as recorded after every tap of the event has run. */
export interface TraceRecord {
  stage: string;
  device: string;
  queue: number;
  io: { kind: IoKind; opcode: number; lba?: bigint; blocks?: number };
  command: Uint8Array | null;
  completion: TapCompletion;
  data: Uint8Array[] | null;
  request: string;
  timeNs: bigint;
  detail: Record<string, unknown> | undefined;
}

export interface TraceEncoder {
  /** What the frames are, for the interface description: 'NVMe/TCP', 'iSCSI', 'Ethernet'. */
  readonly protocol: string;
  /** pcapng link type of the frames (1: Ethernet). */
  readonly linktype: number;
  /** Fresh per-trace state (connections, sequence numbers): one per writer and device. */
  createState(device: string): unknown;
  /** The frames for one event (possibly none). */
  encode(r: TraceRecord, state: unknown): Uint8Array[];
}

const setup = new WeakSet<Uint8Array>();

/** Marks a frame an encoder adds for the protocol's sake (a connection's set-up), not the event's own. */
export function setupFrame(frame: Uint8Array): Uint8Array {
  setup.add(frame);
  return frame;
}

/** Index of the first frame that belongs to the event itself (where its comments go). */
export function firstEventFrame(frames: readonly Uint8Array[]): number {
  const i = frames.findIndex((f) => !setup.has(f));
  return i < 0 ? 0 : i;
}

/** The data of a record as one contiguous view (copied only when it is in several pieces). */
export function joinData(data: Uint8Array[] | null): Uint8Array {
  if (data === null || data.length === 0) return new Uint8Array(0);
  if (data.length === 1) return data[0]!;
  const out = new Uint8Array(data.reduce((n, d) => n + d.length, 0));
  let at = 0;
  for (const d of data) {
    out.set(d, at);
    at += d.length;
  }
  return out;
}

/** The last component of a stage name: 'decode', 'writeback', 'deliver'... */
export const stageStep = (stage: string) => stage.slice(stage.lastIndexOf(':') + 1);
