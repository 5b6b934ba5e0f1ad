// Hands FreeBSD storvsc's S/G bounce check (a faithful model) to the policy fuzzer and prints
// the smallest scatter-gather list it maps wrongly, then what our planner does with that list.
//   node examples/fuzz-bounce-policy.mjs [seed]
import { bouncePolicies, checkPageList, planPageList } from 'sgring';
import { findCounterexample, formatCounterexample } from 'sgring/fuzz';

const seed = Number(process.argv[2] ?? 3);
const ce = findCounterexample(bouncePolicies.freebsdSgBounce, { rule: 'hyperv', seed, runs: 2000 });
if (!ce) {
  console.log(`no counterexample in 2000 lists (seed ${seed})`);
} else {
  console.log(`freebsdSgBounce breaks this list (seed ${ce.seed}):\n`);
  console.log(formatCounterexample(ce));
  const pool = Array.from({ length: 8 }, (_, k) => (0x10000 + k) * 4096);
  const ours = planPageList(ce.segments, { rule: 'hyperv', bouncePages: pool });
  const verdict = checkPageList(ce.segments, ours, 'hyperv');
  console.log(`\nplanPageList: byteOffset 0x${ours.byteOffset.toString(16)}, ${ours.pages.length} pages, ` +
    `${ours.bouncedBytes} bytes bounced -> ${verdict.ok ? 'legal and exact' : verdict.violation}`);
}
