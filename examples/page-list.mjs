// A scatter-gather list that breaks the page-list rule, planned with the fewest bytes bounced,
// the bounce copies around a transfer, and the checker.
import assert from 'node:assert/strict';
import { checkPageList, copyFromBounce, copyToBounce, loadCoreSync, planPageList, zeroBounce } from 'sgring';

const core = loadCoreSync({ guestBytes: 64 << 20 });  // guest RAM: segments and bounce pages live here
const segments = [                       // guest-physical; the first stays, the others bounce
  { addr: 0x100200, len: 3584 },
  { addr: 0x200200, len: 4096 },
  { addr: 0x300200, len: 3584 },
];
const plan = planPageList(segments, {
  rule: 'hyperv',                        // or 'nvme-prp' (byteOffset dword aligned, pageSize = MPS)
  bouncePages: [0x2000000, 0x2001000],   // page-aligned guest addresses it may use
  maxPages: 32,                          // optional
  core,                                  // optional: engine and guest RAM size (default: a shared Wasm core)
});
// plan = { byteOffset: 512, byteCount: 11264, pages: [0x100, 0x2000, 0x2001],
//          copies: [{ segment: 1, segmentOffset: 0, dest: 0x2000000, length: 4096, ... }, ...],
//          bouncedBytes: 7680, bounceEntries: [1, 2], pageSize: 4096 }
assert.deepEqual([plan.byteOffset, plan.pages, plan.bouncedBytes], [512, [0x100, 0x2000, 0x2001], 7680]);
copyToBounce(core, segments, plan);              // before a write (zeroes what the stream does not cover)
zeroBounce(core, segments, plan);                // before a read: the device never sees stale bytes
const actualLen = 11264;                         // what the device says it read into the pages
copyFromBounce(core, segments, plan, actualLen); // after a read: never more than actualLen bytes
assert.deepEqual(checkPageList(segments, plan, 'hyperv'), { ok: true }); // or { ok: false, violation: '...' }
console.log(`byteOffset ${plan.byteOffset}, ${plan.pages.length} pages, ${plan.bouncedBytes} bytes bounced`);
