// BAR0 register offsets and fields (spec/nvme.md §1.1, §1.3).

export const REG = {
  CAP: 0x00,
  VS: 0x08,
  INTMS: 0x0c,
  INTMC: 0x10,
  CC: 0x14,
  CSTS: 0x1c,
  NSSR: 0x20,
  AQA: 0x24,
  ASQ: 0x28,
  ACQ: 0x30,
  DOORBELLS: 0x1000,
} as const;

export const VERSION_1_4 = 0x00010400;

/** CC fields. */
export const cc = {
  en: (v: number) => v & 1,
  css: (v: number) => (v >>> 4) & 7,
  mps: (v: number) => (v >>> 7) & 0xf,
  ams: (v: number) => (v >>> 11) & 7,
  shn: (v: number) => (v >>> 14) & 3,
  iosqes: (v: number) => (v >>> 16) & 0xf,
  iocqes: (v: number) => (v >>> 20) & 0xf,
};

export const CSTS_RDY = 1;
export const CSTS_CFS = 2;
export const CSTS_SHST_COMPLETE = 2 << 2;

/** CAP as a bigint: MQES, CQR, TO, DSTRD 0, CSS (NVM), MPSMIN = MPSMAX = 0: 4 KiB pages only (CC.EN with another MPS sets CFS). */
export function capability(mqes: number, timeout500ms: number): bigint {
  return BigInt(mqes & 0xffff) | (1n << 16n) | (BigInt(timeout500ms & 0xff) << 24n) | (1n << 37n);
}

/** BAR0 size for `queues` queue pairs: the register file, the doorbells, at least 16 KiB. */
export function bar0Size(queues: number): number {
  return Math.max(16 * 1024, 0x1000 + 8 * queues);
}
