// SCSI status and fixed-format sense data (SPC-4 §4.5.3): what a disk target answers when a
// command fails, as storvsp and the iSCSI front end pass it on.

export const SCSI_STATUS = { good: 0x00, checkCondition: 0x02, busy: 0x08, reservationConflict: 0x18, taskSetFull: 0x28 } as const;

export const SENSE_KEY = {
  noSense: 0x0, recoveredError: 0x1, notReady: 0x2, mediumError: 0x3, hardwareError: 0x4, illegalRequest: 0x5,
  unitAttention: 0x6, dataProtect: 0x7, abortedCommand: 0xb, miscompare: 0xe,
} as const;

/** A sense key with its additional sense code and qualifier. */
export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  /** Field pointer of an INVALID FIELD IN CDB (SKSV): the CDB byte at fault. */
  field?: number;
}

export const SENSE = {
  invalidOpcode: { key: SENSE_KEY.illegalRequest, asc: 0x20, ascq: 0x00 },
  lbaOutOfRange: { key: SENSE_KEY.illegalRequest, asc: 0x21, ascq: 0x00 },
  invalidFieldInCdb: (field?: number): Sense => ({ key: SENSE_KEY.illegalRequest, asc: 0x24, ascq: 0x00, field }),
  invalidFieldInParameterList: { key: SENSE_KEY.illegalRequest, asc: 0x26, ascq: 0x00 },
  parameterListLength: { key: SENSE_KEY.illegalRequest, asc: 0x1a, ascq: 0x00 },
  lunNotSupported: { key: SENSE_KEY.illegalRequest, asc: 0x25, ascq: 0x00 },
  unrecoveredReadError: { key: SENSE_KEY.mediumError, asc: 0x11, ascq: 0x00 },
  writeError: { key: SENSE_KEY.mediumError, asc: 0x0c, ascq: 0x00 },
  writeProtected: { key: SENSE_KEY.dataProtect, asc: 0x27, ascq: 0x00 },
  powerOnOrReset: { key: SENSE_KEY.unitAttention, asc: 0x29, ascq: 0x00 },
  capacityChanged: { key: SENSE_KEY.unitAttention, asc: 0x2a, ascq: 0x09 },
  miscompare: { key: SENSE_KEY.miscompare, asc: 0x1d, ascq: 0x00 },
  internalTargetFailure: { key: SENSE_KEY.hardwareError, asc: 0x44, ascq: 0x00 },
  dataPhaseError: { key: SENSE_KEY.abortedCommand, asc: 0x4b, ascq: 0x00 },
} as const;

/** 18 bytes of fixed-format sense data (response code 0x70: current error). */
export function fixedSense(s: Sense, info?: number): Uint8Array {
  const b = new Uint8Array(18);
  b[0] = 0x70 | (info !== undefined ? 0x80 : 0); // VALID when INFORMATION holds the LBA at fault
  b[2] = s.key & 0xf;
  if (info !== undefined) new DataView(b.buffer).setUint32(3, info >>> 0);
  b[7] = 10; // additional sense length
  b[12] = s.asc;
  b[13] = s.ascq;
  if (s.field !== undefined) {
    b[15] = 0x80 | 0x40; // SKSV, C/D = CDB
    new DataView(b.buffer).setUint16(16, s.field);
  }
  return b;
}
