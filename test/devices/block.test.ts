// Block backends: MemoryDisk in core memory and sparse, FileDisk on a real file; ranges,
// read-only, discard, and bad input refused with the block statuses.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCoreSync, MemoryDisk, type BlockBackend, type Core } from '../../src/index';
import { FileDisk } from '../../src/node/index';
import { expectCode } from '../util/errors';

const dir = mkdtempSync(join(tmpdir(), 'sgring-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a pattern through `disk` and reads it back, block by block and across chunk edges. */
function roundTrip(core: Core, disk: BlockBackend, lba: number, blocks: number) {
  const bytes = blocks * disk.blockSize;
  const src = core.alloc(bytes);
  const dst = core.alloc(bytes);
  for (let i = 0; i < bytes; i++) core.u8[src + i] = (i * 7 + lba) & 0xff;
  disk.write(lba, blocks, src);
  disk.read(lba, blocks, dst);
  expect(core.u8.subarray(dst, dst + bytes)).toEqual(core.u8.subarray(src, src + bytes));
  core.free(src);
  core.free(dst);
}

const kinds: [string, (core: Core, blocks: number, o?: { readOnly?: boolean; blockSize?: number }) => BlockBackend][] = [
  ['MemoryDisk in core memory', (core, blockCount, o) => MemoryDisk.create(core, { blockCount, storage: 'core', ...o })],
  ['MemoryDisk, sparse', (core, blockCount, o) => MemoryDisk.create(core, { blockCount, storage: 'sparse', ...o })],
  ['FileDisk', (core, blockCount, o) => {
    const path = join(dir, `d${Math.random().toString(36).slice(2)}.img`);
    if (o?.readOnly) {
      writeFileSync(path, new Uint8Array(blockCount * (o.blockSize ?? 512)));
      return FileDisk.open(path, { core, readOnly: true, blockSize: o.blockSize });
    }
    return FileDisk.open(path, { core, createBlocks: blockCount, blockSize: o?.blockSize });
  }],
];

describe.each(kinds)('%s', (_name, make) => {
  it('writes and reads back, at the start, across 1 MiB chunk edges and at the end', () => {
    const core = loadCoreSync();
    const disk = make(core, 8192); // 4 MiB
    expect([disk.blockSize, disk.blockCount, disk.readOnly]).toEqual([512, 8192, false]);
    roundTrip(core, disk, 0, 1);
    roundTrip(core, disk, 2040, 16); // straddles 1 MiB
    roundTrip(core, disk, 8192 - 9, 9);
    roundTrip(core, disk, 5000, 0);
    disk.flush();
  });

  it('unwritten blocks read as zeros; discard zeroes blocks again', () => {
    const core = loadCoreSync();
    const disk = make(core, 4096);
    const buf = core.alloc(4096 * 2);
    core.u8.fill(0xee, buf, buf + 8192);
    disk.read(100, 8, buf);
    expect(core.u8.subarray(buf, buf + 4096).every((b) => b === 0)).toBe(true);
    core.u8.fill(0x5a, buf, buf + 8192);
    disk.write(10, 16, buf);
    disk.discard!(12, 4);
    disk.read(10, 16, buf);
    const got = core.u8.subarray(buf, buf + 8192);
    expect([got[0], got[2 * 512], got[5 * 512], got[6 * 512]]).toEqual([0x5a, 0, 0, 0x5a]);
  });

  it('[H25] blocks past the end are LbaOutOfRange, bad numbers and core ranges InvalidArgument, nothing moved', () => {
    const core = loadCoreSync();
    const disk = make(core, 64);
    const buf = core.alloc(64 * 512);
    for (const [lba, n] of [[64, 1], [63, 2], [0, 65], [2n ** 63n, 1], [Number.MAX_SAFE_INTEGER, 1]] as const) expectCode(() => disk.read(lba, n, buf), 'LbaOutOfRange');
    for (const [lba, n] of [[-1, 1], [0.5, 1], [0, -1], [0, NaN], [NaN, 1]]) expectCode(() => disk.write(lba, n, buf), 'InvalidArgument');
    expectCode(() => disk.read(0, 1, core.byteLength - 100), 'InvalidArgument');
    expectCode(() => disk.read(0, 1, NaN), 'InvalidArgument');
    expect(disk.read(1n, 1, buf)).toBeUndefined(); // a bigint LBA is fine
  });

  it('a read-only disk refuses writes and discards with ReadOnlyMedium and still reads', () => {
    const core = loadCoreSync();
    const disk = make(core, 64, { readOnly: true });
    const buf = core.alloc(512);
    expectCode(() => disk.write(0, 1, buf), 'ReadOnlyMedium');
    expectCode(() => disk.discard!(0, 1), 'ReadOnlyMedium');
    disk.read(0, 1, buf);
  });

  it('4 KiB blocks', () => {
    const core = loadCoreSync();
    const disk = make(core, 256, { blockSize: 4096 });
    expect(disk.blockSize).toBe(4096);
    roundTrip(core, disk, 255, 1);
  });
});

describe('MemoryDisk', () => {
  it('a 1 TiB sparse disk costs only what was written; dispose gives core memory back', () => {
    const core = loadCoreSync();
    const big = MemoryDisk.create(core, { blockCount: 2 ** 31 });
    expect(big.storage).toBe('sparse');
    const buf = core.alloc(4096);
    big.write(2 ** 31 - 8, 8, buf);
    big.write(0, 1, buf);
    expect(big.allocatedBytes).toBe(2 << 20);
    big.discard(0, 2048);
    expect(big.allocatedBytes).toBe(1 << 20);
    const small = MemoryDisk.create(core, { blockCount: 2048 });
    expect(small.storage).toBe('core');
    const live = core.heapStats().liveBlocks;
    small.dispose();
    expect(core.heapStats().liveBlocks).toBe(live - 1);
    expectCode(() => small.read(0, 1, buf), 'Disposed');
  });

  it('inCore names where blocks lie in core memory for a plain copy, and -1 where read / write must run (sparse, read-only write, out of range, disposed)', () => {
    const core = loadCoreSync();
    const disk = MemoryDisk.create(core, { blockCount: 64 });
    const buf = core.alloc(512);
    core.u8.fill(0x5a, buf, buf + 512);
    disk.write(10, 1, buf);
    const at = disk.inCore(core, 10, 1, false);
    expect(core.u8.subarray(at, at + 512).every((b) => b === 0x5a)).toBe(true);
    expect(disk.inCore(core, 10, 1, true)).toBe(at);
    expect(disk.inCore(core, 0, 64, false)).toBe(disk.ptr);
    for (const [lba, blocks] of [[60, 5], [-1, 1], [64, 1], [1.5, 1], [0, 65]] as const) expect(disk.inCore(core, lba, blocks, false)).toBe(-1);
    const ro = MemoryDisk.create(core, { blockCount: 8, readOnly: true });
    expect(ro.inCore(core, 0, 1, false)).toBeGreaterThan(0);
    expect(ro.inCore(core, 0, 1, true)).toBe(-1);
    expect(MemoryDisk.create(core, { blockCount: 8, storage: 'sparse' }).inCore(core, 0, 1, false)).toBe(-1);
    expect(disk.inCore(loadCoreSync(), 10, 1, false)).toBe(-1); // another core's memory
    disk.dispose();
    expect(disk.inCore(core, 10, 1, false)).toBe(-1);
  });

  it('refuses a nonsense geometry or option', () => {
    const core = loadCoreSync();
    for (const o of [{ blockCount: 0 }, { blockCount: 8, blockSize: 1000 }, { blockCount: 1.5 }, { blockCount: 2 ** 50, blockSize: 65536 }]) expectCode(() => MemoryDisk.create(core, o), 'InvalidArgument');
    expectCode(() => MemoryDisk.create(core, { blockCount: 8, storge: 'core' } as never), 'InvalidArgument');
  });
});

describe('FileDisk', () => {
  it('writes land in the file at lba * blockSize; an existing file gives the size; a closed disk throws Disposed', () => {
    const core = loadCoreSync();
    const path = join(dir, 'f.img');
    const disk = FileDisk.open(path, { core, createBlocks: 100 });
    expect(statSync(path).size).toBe(51200);
    const buf = core.alloc(512);
    core.u8.fill(0x42, buf, buf + 512);
    disk.write(3, 1, buf);
    disk.flush();
    disk.close();
    const file = readFileSync(path);
    expect([file[3 * 512 - 1], file[3 * 512], file[4 * 512 - 1], file[4 * 512]]).toEqual([0, 0x42, 0x42, 0]);
    expectCode(() => disk.read(0, 1, buf), 'Disposed');
    const again = FileDisk.open(path, { core, readOnly: true });
    expect(again.blockCount).toBe(100);
    expectCode(() => FileDisk.open(path, { readOnly: true } as never), 'InvalidArgument');
  });
});
