// The data structures the controller returns to Identify and Get Log Page (NVMe 1.4 layouts):
// the controller (CNS 1), a namespace (CNS 0), the active namespace list (CNS 2), and the error,
// SMART / health and firmware slot log pages.

import type { BlockBackend } from '../block/backend';

export interface ControllerIdentity {
  vendorId: number;
  serial: string;
  model: string;
  firmware: string;
  mdts: number;
  namespaces: number;
  maxQueueEntries: number;
  cntlid: number;
  subnqn: string;
  aerl: number;
  acl: number;
  /** Set when the controller is reached over a fabric (NVMe/TCP): the capsule sizes hosts check. */
  fabrics?: FabricsIdentity;
}

export interface FabricsIdentity {
  /** I/O command capsule size in 16-byte units (64-byte SQE + in-capsule data). */
  ioccsz: number;
  /** I/O response capsule size in 16-byte units. */
  iorcsz: number;
  /** Keep-alive granularity in 100 ms units. */
  kas: number;
}

const ascii = (b: Uint8Array, at: number, len: number, s: string) => {
  for (let i = 0; i < len; i++) b[at + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
};

/** Identify Controller (CNS 1), 4096 bytes. */
export function identifyController(id: ControllerIdentity): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, id.vendorId, true); // VID
  dv.setUint16(2, id.vendorId, true); // SSVID
  ascii(b, 4, 20, id.serial);
  ascii(b, 24, 40, id.model);
  ascii(b, 64, 8, id.firmware);
  b[72] = 6; // RAB
  b[77] = id.mdts;
  dv.setUint16(78, id.cntlid, true);
  dv.setUint32(80, 0x00010400, true); // VER 1.4
  b[111] = 1; // CNTRLTYPE: I/O controller
  dv.setUint16(256, 0, true); // OACS: no optional admin commands
  b[258] = id.acl; // ACL (0's based)
  b[259] = id.aerl; // AERL (0's based)
  b[260] = 0x03; // FRMW: slot 1 read-only, 1 slot
  b[261] = 0x04; // LPA: extended data for Get Log Page (bit 2); no per-namespace SMART, no effects log
  b[262] = 63; // ELPE: 64 error log entries
  dv.setUint16(266, 343, true); // WCTEMP 70 C
  dv.setUint16(268, 353, true); // CCTEMP 80 C
  b[512] = 0x66; // SQES
  b[513] = 0x44; // CQES
  dv.setUint16(514, id.maxQueueEntries, true); // MAXCMD
  dv.setUint32(516, id.namespaces, true); // NN
  dv.setUint16(520, 0x0001 | 0x0004 | 0x0008, true); // ONCS: Compare, Dataset Management, Write Zeroes
  b[525] = 0x01; // VWC present
  dv.setUint32(536, 0x00000001, true); // SGLS: SGLs supported (any alignment)
  if (id.fabrics) {
    dv.setUint16(320, id.fabrics.kas, true); // KAS
    dv.setUint32(536, 0x00100001, true); // SGLS: + SGL Data Block with an offset (in-capsule data)
    dv.setUint32(1792, id.fabrics.ioccsz, true); // IOCCSZ
    dv.setUint32(1796, id.fabrics.iorcsz, true); // IORCSZ
    dv.setUint16(1800, 0, true); // ICDOFF: in-capsule data right after the SQE
    b[1803] = 1; // MSDBD: one SGL data block descriptor per command
  }
  ascii(b, 768, 256, '');
  b.fill(0, 768, 1024);
  for (let i = 0; i < Math.min(id.subnqn.length, 255); i++) b[768 + i] = id.subnqn.charCodeAt(i) & 0x7f;
  return b;
}

/** Identify Namespace (CNS 0), 4096 bytes: one LBA format, the backend's block size. */
export function identifyNamespace(disk: BlockBackend): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  const blocks = BigInt(disk.blockCount);
  dv.setBigUint64(0, blocks, true); // NSZE
  dv.setBigUint64(8, blocks, true); // NCAP
  dv.setBigUint64(16, blocks, true); // NUSE
  b[24] = disk.discard ? 0x04 : 0; // NSFEAT: deallocated blocks read as zero
  b[25] = 0; // NLBAF: one format
  b[26] = 0; // FLBAS: format 0
  b[33] = 0; // DPS: no protection
  if (disk.readOnly) b[99] = 0; // (write protection is reported through status, not here)
  b[130] = Math.log2(disk.blockSize); // LBAF0.LBADS
  return b;
}

/**
 * Namespace Identification Descriptor list (CNS 3): one UUID (NIDT 3), stable for a controller
 * serial and namespace id (hosts use it to tell namespaces apart across paths).
 */
export function namespaceDescriptors(serial: string, nsid: number): Uint8Array {
  const b = new Uint8Array(4096);
  b[0] = 3; // NIDT: UUID
  b[1] = 16; // NIDL
  let h = 0x811c9dc5;
  const text = `${serial}/${nsid}`;
  for (let i = 0; i < 16; i++) {
    for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0) ^ i, 0x01000193) >>> 0;
    b[4 + i] = h & 0xff;
  }
  b[4 + 6] = (b[4 + 6]! & 0x0f) | 0x80; // a name-based UUID's version nibble (8: custom)
  b[4 + 8] = (b[4 + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  return b;
}

/** Active Namespace ID list (CNS 2): the ids above `after`, ascending, 1024 slots. */
export function activeNamespaces(count: number, after: number): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  for (let id = after + 1, i = 0; id <= count && i < 1024; id++, i++) dv.setUint32(4 * i, id, true);
  return b;
}

/** Counted as numbers (exact to 2^53, decades of commands); the SMART log widens them. */
export interface HealthCounters {
  blocksRead: number;
  blocksWritten: number;
  readCommands: number;
  writeCommands: number;
  errors: number;
}

const u128 = (dv: DataView, at: number, v: number | bigint) => {
  const b = BigInt(v);
  dv.setBigUint64(at, b & 0xffff_ffff_ffff_ffffn, true);
  dv.setBigUint64(at + 8, b >> 64n, true);
};

/** SMART / Health Information (log page 2), 512 bytes. Data units are thousands of 512-byte units. */
export function smartLog(c: HealthCounters, blockSize: number): Uint8Array {
  const b = new Uint8Array(512);
  const dv = new DataView(b.buffer);
  dv.setUint16(1, 296, true); // composite temperature, kelvin
  b[3] = 100; // available spare
  b[4] = 10; // threshold
  const units = (blocks: number) => (BigInt(blocks) * BigInt(blockSize / 512) + 999n) / 1000n;
  u128(dv, 32, units(c.blocksRead));
  u128(dv, 48, units(c.blocksWritten));
  u128(dv, 64, c.readCommands);
  u128(dv, 80, c.writeCommands);
  u128(dv, 176, c.errors); // number of error information log entries
  return b;
}

/** Firmware Slot Information (log page 3), 512 bytes: slot 1 active. */
export function firmwareLog(firmware: string): Uint8Array {
  const b = new Uint8Array(512);
  b[0] = 1;
  ascii(b, 8, 8, firmware);
  return b;
}
