// The event a device hands to its taps: what a stage saw, in the device's own terms.

/** What kind of request an event belongs to, as far as the injectors need to know. */
export type IoKind = 'read' | 'write' | 'flush' | 'discard' | 'admin' | 'other';

/**
 * The device's own status values for the outcomes injectors produce (an NVMe status field, a
 * SCSI status with its sense key, an NVSP/RNDIS status): injectors name the outcome, the device
 * gives the number.
 */
export interface DeviceStatuses {
  success: number;
  /** A write refused because the medium is read-only (NVMe SCT 1 / SC 0x82; SCSI DATA PROTECT). */
  readOnly: number;
  /** An unrecovered read or write error (NVMe SC 0x81 / 0x80; SCSI MEDIUM ERROR). */
  mediaError: number;
  /** The device failed internally (NVMe Internal Error; SCSI HARDWARE ERROR). */
  internal: number;
}

/** The completion a request is getting: the taps may change it. */
export interface TapCompletion {
  status: number;
  /** NVMe completion dword 0 (0 where the device has no such field). */
  cdw0: number;
}

/** The event a device hands to its taps (TapRegistry.run). */
export interface TapEvent {
  /** The device instance, e.g. 'nvme0'. */
  device: string;
  /** Queue, channel or sub-channel the request came on. */
  queue: number;
  io: { kind: IoKind; opcode: number; lba?: bigint; blocks?: number };
  /** The command or packet as the device decoded it (a view: decode taps may edit it). */
  command: Uint8Array | null;
  completion: TapCompletion;
  /** The request's data, in order, where the stage has it (views onto guest memory or a buffer). */
  data: Uint8Array[] | null;
  statuses: DeviceStatuses;
  /** A key that stays the same for one request across its stages (e.g. "sqid:cid"). */
  request: string;
  /** Time in nanoseconds (the device's clock, virtual or real) for traces. */
  timeNs: bigint;
  /** Extra fields a device passes to its own trace encoder. */
  detail?: Record<string, unknown>;
}
