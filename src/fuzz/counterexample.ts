// findCounterexample: hands generated scatter-gather lists to a bounce policy and returns the
// smallest one (shrunk by fast-check) whose plan is wrong — the page list does not describe
// exactly the caller's bytes after the policy's copies, or breaks the rule — or, with
// check: 'minimal', copies more than the optimal planner needs.

import fc from 'fast-check';
import { SgringError } from '../engine/errors';
import { checkPageList } from '../core/check-pagelist';
import { planPageList, type PagePlan, type PageRule, type Segment } from '../core/pagelist';
import type { BouncePolicy } from './policies';

export interface FuzzOptions {
  rule: PageRule;
  /** Page size (default 4096; the NVMe MPS for 'nvme-prp'). */
  pageSize?: number;
  /** Generated lists to try before giving up (default 1000). */
  runs?: number;
  /** fast-check seed, for a reproducible search (default: random; the result reports it). */
  seed?: number;
  /** 'correct' (default): the plan must be legal and exact. 'minimal': and copy no more than the optimum. */
  check?: 'correct' | 'minimal';
}

export interface Counterexample {
  segments: Segment[];
  /** The policy's plan for them (null when the policy threw). */
  plan: PagePlan | null;
  violation: string;
  /** The seed that found it, to replay the search. */
  seed: number;
}

/** Guest layout of generated lists: each independent segment gets its own 64-page region. */
const REGION_PAGES = 64;
const FIRST_REGION = 16;
/** Bounce pool: 64 pages far above the segments. */
const POOL_BASE_PAGE = 0x10000;
const POOL_PAGES = 64;

interface SegmentShape {
  /** Starts where the previous segment ended (physically contiguous pieces, e.g. in one page). */
  contiguous: boolean;
  page: number;
  offset: number;
  len: 'toPageEnd' | 'page' | number;
}

function shapeArb(p: number): fc.Arbitrary<SegmentShape> {
  return fc.record({
    contiguous: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    page: fc.nat(REGION_PAGES - 16),
    offset: fc.oneof(fc.constant(0), fc.constantFrom(512, p / 2, p - 512), fc.integer({ min: 0, max: p - 1 })),
    len: fc.oneof(
      fc.constant<'toPageEnd'>('toPageEnd'),
      fc.constant<'page'>('page'),
      fc.integer({ min: 1, max: p }),
      fc.integer({ min: p + 1, max: 3 * p }),
    ),
  });
}

/** Turns shapes into a concrete, non-overlapping segment list. */
function build(shapes: SegmentShape[], p: number, rule: PageRule): Segment[] {
  const out: Segment[] = [];
  shapes.forEach((sh, i) => {
    const prev = out[i - 1];
    let addr = sh.contiguous && prev ? prev.addr + prev.len : (FIRST_REGION + i * REGION_PAGES + sh.page) * p + sh.offset;
    // NVMe wants dword-aligned data pointers; keep most lists in that shape so the search
    // explores layouts rather than the one rule every policy handles the same way.
    if (rule === 'nvme-prp' && !sh.contiguous) addr -= addr % 4;
    const len = sh.len === 'toPageEnd' ? p - (addr % p) : sh.len === 'page' ? p : sh.len;
    out.push({ addr, len });
  });
  return out;
}

/** What is wrong with `policy` on `segments`, or null. */
function judge(policy: BouncePolicy, segments: Segment[], opts: FuzzOptions, p: number): { plan: PagePlan | null; violation: string } | null {
  const bouncePages = Array.from({ length: POOL_PAGES }, (_, k) => (POOL_BASE_PAGE + k) * p);
  const planOpts = { rule: opts.rule, pageSize: p, bouncePages };
  let plan: PagePlan;
  try {
    plan = policy(segments, planOpts);
  } catch (e) {
    // Refusing is fine when nothing can comply; refusing what the optimum plans is not.
    try {
      planPageList(segments, planOpts);
    } catch {
      return null;
    }
    const what = e instanceof SgringError ? `${e.code}: ${e.message}` : String(e);
    return { plan: null, violation: `the policy refused a list that can be planned (${what})` };
  }
  const verdict = checkPageList(segments, plan, opts.rule, { pageSize: p });
  if (!verdict.ok) return { plan, violation: verdict.violation! };
  if (opts.check === 'minimal') {
    const copied = plan.copies.reduce((a, c) => a + c.length, 0);
    const best = planPageList(segments, planOpts).bouncedBytes;
    if (copied > best) return { plan, violation: `the plan copies ${copied} bytes where ${best} suffice` };
  }
  return null;
}

/**
 * Searches for a scatter-gather list that breaks `policy` under `opts.rule`. The lists mix
 * aligned pages, a partial first page, partial middle pages, physically contiguous pieces
 * sharing a page and multi-page segments. Returns null when `runs` lists pass, else the
 * shrunk failing case with the policy's plan and the violation in words.
 */
export function findCounterexample(policy: BouncePolicy, opts: FuzzOptions): Counterexample | null {
  const p = opts.pageSize ?? 4096;
  if (opts.rule !== 'hyperv' && opts.rule !== 'nvme-prp') throw new SgringError('InvalidArgument', `unknown page-list rule '${String(opts.rule)}'`);
  if (!Number.isInteger(p) || p < 4096 || p > 65536 || (p & (p - 1)) !== 0) throw new SgringError('InvalidPageSize');
  const seed = opts.seed ?? Math.floor(Math.random() * 0x7fffffff);
  const arb = fc.array(shapeArb(p), { minLength: 1, maxLength: 6 });
  const result = fc.check(
    fc.property(arb, (shapes) => judge(policy, build(shapes, p, opts.rule), opts, p) === null),
    { seed, numRuns: opts.runs ?? 1000 },
  );
  if (!result.failed || !result.counterexample) return null;
  const segments = build(result.counterexample[0], p, opts.rule);
  const found = judge(policy, segments, opts, p);
  if (!found) return null; // not reproducible: the policy is not deterministic
  return { segments, plan: found.plan, violation: found.violation, seed };
}

/** A counterexample as text: the segments as a table, the plan, and what the host would read. */
export function formatCounterexample(ce: Counterexample, pageSize = 4096): string {
  const hex = (n: number) => `0x${n.toString(16)}`;
  const rows = ce.segments.map((s, i) => {
    const off = s.addr % pageSize;
    const end = (s.addr + s.len) % pageSize;
    return `| ${i} | ${hex(s.addr)} | ${hex(off)} | ${s.len} | ${end === 0 ? 'page end' : hex(end)} |`;
  });
  const plan = ce.plan
    ? `plan: byteOffset ${hex(ce.plan.byteOffset)}, ${ce.plan.pages.length} pages [${ce.plan.pages.map(hex).join(', ')}], ` +
      `${ce.plan.copies.length} copies (${ce.plan.bouncedBytes} bytes bounced)`
    : 'plan: (the policy threw)';
  return ['| segment | address | page offset | length | ends at |', '|---:|---:|---:|---:|---|', ...rows, '', plan, `violation: ${ce.violation}`].join('\n');
}
