// What the taps see of a SCSI command, for both ends of a device that carries SCSI (storvsc
// guest and storvsp host, the iSCSI front end): the request kind and LBA range of a CDB, and the
// SCSI meaning of the outcomes injectors name.

import type { DeviceStatuses, IoKind } from '../../taps/event';
import { SCSI_STATUS, SENSE, SENSE_KEY, type Sense } from './sense';

/**
 * What the injectors' outcomes become on a SCSI disk: the SCSI status in the low byte, the sense
 * key above it (CHECK CONDITION with DATA PROTECT, MEDIUM ERROR, HARDWARE ERROR).
 */
export const SCSI_TAP_STATUSES: DeviceStatuses = {
  success: 0,
  readOnly: (SENSE_KEY.dataProtect << 8) | SCSI_STATUS.checkCondition,
  mediaError: (SENSE_KEY.mediumError << 8) | SCSI_STATUS.checkCondition,
  internal: (SENSE_KEY.hardwareError << 8) | SCSI_STATUS.checkCondition,
};

/** Fixed sense for a tap's outcome (sense key `key`): the usual ASC for the key and the direction. */
export function tapSense(key: number, kind: IoKind): Sense {
  if (key === SENSE_KEY.dataProtect) return SENSE.writeProtected;
  if (key === SENSE_KEY.mediumError) return kind === 'write' ? SENSE.writeError : SENSE.unrecoveredReadError;
  if (key === SENSE_KEY.hardwareError) return SENSE.internalTargetFailure;
  return { key, asc: 0, ascq: 0 };
}

/** READ (6/10/16) and WRITE (6/10/16) opcodes: the commands that move blocks. */
export const isReadOp = (op: number): boolean => op === 0x08 || op === 0x28 || op === 0x88;
export const isWriteOp = (op: number): boolean => op === 0x0a || op === 0x2a || op === 0x8a;

/** The request kind of a CDB as the injectors know kinds (WRITE SAME counts as a write). */
export function kindOf(cdb: Uint8Array): IoKind {
  const op = cdb[0]!;
  if (isReadOp(op)) return 'read';
  if (isWriteOp(op) || op === 0x93) return 'write';
  if (op === 0x35 || op === 0x91) return 'flush';
  return op === 0x42 ? 'discard' : 'other';
}

/** The taps' `io` of a CDB: kind, opcode, and LBA and block count of a READ/WRITE (6/10/16). */
export function ioOf(cdb: Uint8Array): { kind: IoKind; opcode: number; lba?: bigint; blocks?: number } {
  const kind = kindOf(cdb);
  const opcode = cdb[0]!;
  const dv = new DataView(cdb.buffer, cdb.byteOffset, cdb.length);
  switch (opcode) {
    case 0x08: case 0x0a: return { kind, opcode, lba: BigInt(((cdb[1]! & 0x1f) << 16) | dv.getUint16(2)), blocks: cdb[4] || 256 };
    case 0x28: case 0x2a: return cdb.length >= 10 ? { kind, opcode, lba: BigInt(dv.getUint32(2)), blocks: dv.getUint16(7) } : { kind, opcode };
    case 0x88: case 0x8a: case 0x93: return cdb.length >= 16 ? { kind, opcode, lba: dv.getBigUint64(2), blocks: dv.getUint32(10) } : { kind, opcode };
    default: return { kind, opcode };
  }
}
