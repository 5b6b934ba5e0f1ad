// loadCore / loadCoreSync: engines, memory ownership and layout, the ways to supply the Wasm
// engine (embedded, bytes, Module, URL), and views that survive memory growth.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadCore, loadCoreSync, SgringError, VmbusRing } from '../../src/index';

const wasmBytes = (name: string) => readFileSync(new URL(`../../build/${name}`, import.meta.url));

function roundTrip(ring: VmbusRing) {
  const payload = Uint8Array.from({ length: 100 }, (_, i) => i);
  expect(ring.writePacket({ type: 6, payload, transactionId: 5n }).written).toBe(true);
  const p = ring.readPacket()!;
  expect(p.transactionId).toBe(5n);
  expect(Array.from(p.payload.subarray(0, 100))).toEqual(Array.from(payload));
}

describe('loading the engine', () => {
  it('loads the embedded engine sync and async, for plain and shared memory, and the reference engine', async () => {
    for (const c of [loadCoreSync(), await loadCore(), loadCoreSync({ shared: true }), await loadCore({ shared: true }), loadCoreSync({ engine: 'reference' })]) {
      expect(c.memory).toBeInstanceOf(WebAssembly.Memory);
      roundTrip(VmbusRing.create(c, { dataSize: 8192 }));
    }
    expect(loadCoreSync({ shared: true }).shared).toBe(true);
    expect(loadCoreSync().engine).toBe('wasm');
    expect(loadCoreSync({ engine: 'reference' }).engine).toBe('reference');
  });

  it('accepts the engine as bytes, as a compiled Module, or from a URL', async () => {
    const bytes = wasmBytes('core.wasm');
    roundTrip(VmbusRing.create(loadCoreSync({ wasm: bytes }), { dataSize: 4096 }));
    roundTrip(VmbusRing.create(await loadCore({ wasm: new WebAssembly.Module(bytes) }), { dataSize: 4096 }));
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/wasm' });
      res.end(bytes);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/core.wasm`);
      roundTrip(VmbusRing.create(await loadCore({ wasm: url }), { dataSize: 4096 }));
      expect(() => loadCoreSync({ wasm: url })).toThrow(SgringError);
    } finally {
      server.close();
    }
  });

  it('refuses a build that does not match the memory, and unknown engines, with typed errors', () => {
    const shared = new WebAssembly.Memory({ initial: 2, maximum: 100, shared: true });
    expect(() => loadCoreSync({ memory: shared, wasm: wasmBytes('core.wasm') })).toThrow(SgringError);
    expect(() => loadCoreSync({ engine: 'native' as never })).toThrow(/unknown engine/);
    expect(() => loadCoreSync({ guestBytes: -1 })).toThrow(SgringError);
    expect(() => loadCoreSync({ memory: {} as WebAssembly.Memory })).toThrow(SgringError);
  });

  it('lays out a fresh memory once; a second core on it attaches to the same layout and guest window', () => {
    const a = loadCoreSync({ shared: true, guestBytes: 1 << 20 });
    expect(a.guestBytes).toBe(1 << 20);
    expect(a.guestBase % 4096).toBe(0);
    const ring = VmbusRing.create(a, { dataSize: 4096 });
    const b = loadCoreSync({ memory: a.memory, engine: 'reference' });
    expect([b.guestBase, b.guestBytes]).toEqual([a.guestBase, a.guestBytes]);
    // Allocations from either core never overlap.
    const x = a.alloc(100);
    const y = b.alloc(100);
    expect(Math.abs(x - y)).toBeGreaterThanOrEqual(100);
    // One endpoint per side, one engine per side, same bytes.
    ring.writePacket({ type: 6, payload: new Uint8Array([1, 2, 3]) });
    const peer = VmbusRing.attach(b, ring.ptr, ring.totalBytes);
    expect(Array.from(peer.readPacket()!.payload.subarray(0, 3))).toEqual([1, 2, 3]);
  });

  it('keeps working when memory grows mid-run: rings, batches and views are revalidated', () => {
    for (const shared of [false, true]) {
      const c = loadCoreSync({ shared, initialBytes: 1 << 16 });
      const ring = VmbusRing.create(c, { dataSize: 8192 });
      const before = c.memory.buffer.byteLength;
      let sent = 0;
      let got = 0;
      for (let round = 0; round < 20; round++) {
        const payload = Uint8Array.from({ length: 64 }, (_, i) => (round + i) & 0xff);
        ring.writePacket({ type: 6, payload, transactionId: BigInt(sent++) });
        const region = c.alloc(256 * 1024); // grows the memory most rounds
        c.u8.fill(0xab, region, region + 1024);
        const p = ring.readPacket()!;
        expect(p.transactionId).toBe(BigInt(got++));
        expect(p.payload[63]).toBe((round + 63) & 0xff);
        expect(ring.bytes.length).toBe(4096 + 8192);
        expect(ring.bytes.buffer).toBe(c.memory.buffer);
      }
      expect(c.memory.buffer.byteLength).toBeGreaterThan(before + 4 * 1024 * 1024);
      // A view taken before growth is detached (non-shared) but core.view gives a live one.
      const v = c.view(ring.ptr, 16);
      c.alloc(1 << 20);
      expect(c.view(ring.ptr, 16).length).toBe(16);
      if (!shared) expect(v.length).toBe(0);
    }
  });

  it('reports allocation beyond the 2 GiB limit as OutOfMemory', () => {
    const c = loadCoreSync();
    expect(() => c.alloc(2 ** 31)).toThrow(expect.objectContaining({ code: 'OutOfMemory' }));
  });
});

describe('loadCore options', () => {
  it('refuses unknown option names and wrongly typed values, naming them', async () => {
    expect(() => loadCoreSync({ sharedd: true } as never)).toThrow(/loadCore: unknown option 'sharedd'; known: engine, memory, shared/);
    await expect(loadCore({ guestbytes: 4096 } as never)).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect(() => loadCoreSync({ shared: 'yes' } as never)).toThrow(/shared must be true or false/);
    expect(() => loadCoreSync({ initialBytes: NaN })).toThrow(/initialBytes NaN/);
    expect(() => loadCoreSync({ memory: {} as never })).toThrow(/options.memory must be a WebAssembly.Memory \(got Object\)/);
    expect(() => loadCoreSync(null as never)).toThrow(SgringError);
  });

  it('asking for shared memory where the page is not cross-origin isolated is SharedMemoryUnavailable, naming the fix', async () => {
    const g = globalThis as { crossOriginIsolated?: boolean };
    g.crossOriginIsolated = false;
    try {
      for (const f of [() => loadCoreSync({ shared: true }), () => loadCoreSync({ shared: true, engine: 'reference' })]) {
        expect(f).toThrow(expect.objectContaining({ code: 'SharedMemoryUnavailable' }));
      }
      await expect(loadCore({ shared: true })).rejects.toThrow(/crossOriginIsolated.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/);
      expect(loadCoreSync().shared).toBe(false);
    } finally {
      delete g.crossOriginIsolated;
    }
    expect(loadCoreSync({ shared: true }).shared).toBe(true);
  });
});
