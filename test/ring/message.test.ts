// The sender's length through a ring: readPacket gives the wire view (padded to 8 bytes);
// frameMessage / unframeMessage carry the exact bytes, and a lying prefix is refused.
import { describe, expect, it } from 'vitest';
import { frameMessage, loadCoreSync, unframeMessage, VmbusRing } from '../../src/index';
import { expectCode } from '../util/errors';
import { ENGINES } from '../util/engines';

describe.each(ENGINES)('framed messages (%s)', (engine) => {
  it('round-trip every length exactly, where the raw payload is padded', () => {
    const ring = VmbusRing.create(loadCoreSync({ engine }), { dataSize: 8192 });
    for (let n = 0; n <= 20; n++) {
      const msg = Uint8Array.from({ length: n }, (_, i) => (i === n - 1 ? 0 : 65 + i)); // a trailing NUL is data too
      ring.writePacket({ type: 6, payload: frameMessage(msg) });
      const p = ring.readPacket()!;
      expect(p.payload.length % 8).toBe(0);
      expect(Array.from(unframeMessage(p.payload))).toEqual(Array.from(msg));
    }
  });

  it('a prefix that claims more than the payload holds is InvalidMessageLength, not a read past it', () => {
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setUint32(0, 13, true);
    expect(expectCode(() => unframeMessage(bad), 'InvalidMessageLength').message).toMatch(/claims 13 bytes, the payload holds 12/);
    expectCode(() => unframeMessage(new Uint8Array(3)), 'InvalidMessageLength');
    expectCode(() => frameMessage('text' as never), 'InvalidArgument');
  });
});
