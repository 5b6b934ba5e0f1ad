// One SCSI command through the tap stages every SCSI front end has — decode (the command as it
// arrived), execute (write data on its way to the disk, read data on its way back), writeback
// (the outcome before the response) — so storvsp and the iSCSI target give injectors and traces
// the same pipeline, traced as iSCSI.

import type { StagePoint, TapRegistry } from '../../taps/registry';
import { iscsiEncoder } from '../../trace/iscsi';
import type { ScsiResult } from './disk';
import { fixedSense, SCSI_STATUS } from './sense';
import { ioOf, SCSI_TAP_STATUSES, tapSense } from './taps';

export interface ScsiStages {
  decode: StagePoint;
  execute: StagePoint;
  writeback: StagePoint;
}

/** Declares `<module>:io:decode|execute|writeback` for `device` on `taps`. */
export function declareScsiStages(taps: TapRegistry, device: string, module: string): ScsiStages {
  const [decode, execute, writeback] = taps.declare(device, [
    { name: `${module}:io:decode`, description: 'the command as the target read it (CDB, LUN)' },
    { name: `${module}:io:execute`, description: 'write data on its way to the disk, read data on its way back' },
    { name: `${module}:io:writeback`, description: 'the outcome before the response: SCSI status, sense, read data' },
  ], { encoder: iscsiEncoder });
  return { decode: decode!, execute: execute!, writeback: writeback! };
}

/** True when a tap is attached at one of the stages (commands then go through runStaged). */
export function anyTap(s: ScsiStages | null): boolean {
  return s !== null && (s.decode.taps !== null || s.execute.taps !== null || s.writeback.taps !== null);
}

export interface StagedCommand {
  device: string;
  /** Channel or connection the command came on. */
  queue: number;
  /** The same key at every stage of one command. */
  request: string;
  lun: number;
  cdb: Uint8Array;
  /** Bytes of data the command moves, as the initiator said (for the trace). */
  length: number;
  /** The write data, fetched once the decode stage lets the command on (null: none). */
  dataOut: (() => Uint8Array) | null;
  /** Runs the command on the disk. */
  run: (dataOut: Uint8Array | undefined) => ScsiResult | Promise<ScsiResult>;
}

/**
 * Runs `c` through the stages. Returns the outcome to report — the disk's, or the one a tap
 * decided, with fixed sense for its sense key; or null when a tap dropped the command (nothing
 * is to be answered). Errors of `dataOut` and `run` propagate.
 */
export async function runStaged(taps: TapRegistry | null, s: ScsiStages | null, c: StagedCommand): Promise<ScsiResult | null> {
  if (taps === null || s === null) return c.run(c.dataOut?.());
  const io = ioOf(c.cdb);
  const completion = { status: 0, cdw0: 0 };
  let sense: Uint8Array | null = null;
  const stage = async (p: StagePoint, data: Uint8Array | null): Promise<'go' | 'drop' | 'complete'> => {
    if (p.taps === null) return 'go';
    const o = taps.run(p, {
      device: c.device, queue: c.queue, io, command: c.cdb, completion, data: data && data.length > 0 ? [data] : null, statuses: SCSI_TAP_STATUSES,
      request: c.request, timeNs: BigInt(Math.round(performance.now() * 1e6)), detail: { lun: c.lun, transferBytes: c.length, sense },
    });
    if (o.error) {
      completion.status = SCSI_TAP_STATUSES.internal;
      return 'complete';
    }
    if (o.wait) await o.wait;
    return o.action === 'continue' ? 'go' : o.action;
  };
  let data: Uint8Array | null = null;
  let transferred = 0;
  let step = await stage(s.decode, null);
  if (step === 'drop') return null;
  if (step === 'go') {
    const dataOut = c.dataOut?.();
    if (dataOut) step = await stage(s.execute, dataOut);
    if (step === 'drop') return null;
    if (step === 'go') {
      const r = await c.run(dataOut);
      completion.status = r.status === SCSI_STATUS.good ? 0 : r.status | ((r.sense ? r.sense[2]! & 0xf : 0) << 8);
      sense = r.sense;
      transferred = r.transferred;
      if (r.status === SCSI_STATUS.good) data = r.data;
      if (data && data.length > 0 && !dataOut) step = await stage(s.execute, data);
      if (step === 'drop') return null;
    }
  }
  if (step === 'complete') sense = null; // a tap decided the outcome: its sense, not the disk's
  if ((await stage(s.writeback, data)) === 'drop') return null;
  if (completion.status === 0) return { status: SCSI_STATUS.good, sense: null, data, transferred: data ? data.length : transferred };
  const status = completion.status & 0xff;
  if (sense === null && status === SCSI_STATUS.checkCondition) sense = fixedSense(tapSense(completion.status >> 8, io.kind));
  return { status, sense, data: null, transferred: 0 };
}
