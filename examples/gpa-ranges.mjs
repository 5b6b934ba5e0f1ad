// GPA ranges: a segment list classified against the page-list rule, encoded as one range, decoded back.
import assert from 'node:assert/strict';
import { classifySegments, decodeGpaRanges, encodeGpaRange, loadCoreSync } from 'sgring';

const core = loadCoreSync();
const segs = [{ addr: 0x12345e00, len: 0x200 }, { addr: 0x20000000, len: 0x1000 }, { addr: 0x30000000, len: 0x800 }];
assert.equal(classifySegments(core, segs).firstViolation, -1); // -1: legal as it is
const img = encodeGpaRange(core, segs);       // 32 bytes: {0x1A00, 0xE00, 3 PFNs}
assert.equal(img.length, 32);
const back = decodeGpaRanges(core, img, 1).segments; // the same three pieces, range 0
assert.deepEqual(back.map((s) => [s.addr, s.len]), segs.map((s) => [s.addr, s.len]));
console.log(`${img.length}-byte range, ${back.length} pieces back`);
