// A page served without COOP/COEP (most pages): the library works on one thread, and asking for
// shared memory, which cannot exist here, is one typed error that says how to get it.
import { describe, expect, it } from 'vitest';
import { loadCore, loadCoreSync, SgringError, VmbusRing } from '../../src/index';

function expectUnavailable(e: unknown) {
  expect(e).toBeInstanceOf(SgringError);
  expect((e as SgringError).code).toBe('SharedMemoryUnavailable');
  expect((e as SgringError).message).toMatch(/crossOriginIsolated/);
  expect((e as SgringError).message).toMatch(/Cross-Origin-Opener-Policy: same-origin/);
  expect((e as SgringError).message).toMatch(/Cross-Origin-Embedder-Policy: require-corp/);
}

describe('in Chromium, on a page that is not cross-origin isolated', () => {
  it('is not isolated', () => {
    expect(crossOriginIsolated).toBe(false);
  });

  it('loadCoreSync({ shared: true }) and loadCore({ shared: true }) throw SharedMemoryUnavailable with the fix', async () => {
    let sync: unknown = null;
    try {
      loadCoreSync({ shared: true });
    } catch (e) {
      sync = e;
    }
    expectUnavailable(sync);
    let async: unknown = null;
    await loadCore({ shared: true }).catch((e: unknown) => (async = e));
    expectUnavailable(async);
    let reference: unknown = null;
    try {
      loadCoreSync({ shared: true, engine: 'reference' });
    } catch (e) {
      reference = e;
    }
    expectUnavailable(reference);
  });

  it('works unshared, sync and async, both engines', async () => {
    for (const core of [loadCoreSync(), await loadCore(), loadCoreSync({ engine: 'reference' })]) {
      expect(core.shared).toBe(false);
      const ring = VmbusRing.create(core, { dataSize: 4096 });
      expect(ring.writePacket({ type: 6, payload: Uint8Array.of(4, 2) }).written).toBe(true);
      expect(Array.from(ring.readPacket()!.payload.subarray(0, 2))).toEqual([4, 2]);
    }
  });
});
