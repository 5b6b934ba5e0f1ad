// Segment-list arbitraries and plain models shared by the GPA and classifier properties.
import fc from 'fast-check';

export interface Seg { addr: number; len: number }
export const PAGE = 4096;
const MAX_PFN = 2 ** 40 - 1;

const pfnArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xfffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_PFN }) },
);

/**
 * A list that satisfies the §4.7 rule: the head may start mid-page and runs to a page end,
 * middles are whole pages, the tail starts at offset 0 and may end early. Segments cover 1-4
 * pages; some continue physically where the previous one ended (exercising the decoder's merge).
 */
export const legalListArb: fc.Arbitrary<Seg[]> = fc.record({
  parts: fc.array(fc.record({ pfn: pfnArb, pages: fc.integer({ min: 1, max: 4 }), contiguous: fc.boolean() }), { minLength: 1, maxLength: 10 }),
  head: fc.integer({ min: 0, max: PAGE - 1 }),
  tailCut: fc.integer({ min: 0, max: PAGE - 1 }),
}).map(({ parts, head, tailCut }) => {
  const out: Seg[] = [];
  let nextPfn = 0;
  parts.forEach((p, i) => {
    let pfn = p.contiguous && i > 0 ? nextPfn : p.pfn;
    pfn = Math.min(pfn, MAX_PFN + 1 - p.pages);
    let addr = pfn * PAGE;
    let len = p.pages * PAGE;
    if (i === 0) {
      addr += head;
      len -= head;
    }
    if (i === parts.length - 1) len = Math.max(1, len - tailCut);
    out.push({ addr, len });
    nextPfn = pfn + p.pages;
  });
  return out;
});

/** Any list of non-empty segments below 2^52 (any offsets, any lengths up to a few pages). */
export const anyListArb: fc.Arbitrary<Seg[]> = fc.array(fc.oneof(
  { weight: 3, arbitrary: fc.record({ addr: fc.integer({ min: 0, max: 0x40_0000 }), len: fc.integer({ min: 1, max: 0x3000 }) }) },
  { weight: 1, arbitrary: fc.record({ addr: fc.integer({ min: 0, max: 2 ** 52 - 0x20000 }), len: fc.integer({ min: 1, max: 0x20000 }) }) },
  { weight: 1, arbitrary: fc.record({ pfn: fc.integer({ min: 0, max: 0xfff }), pages: fc.integer({ min: 1, max: 3 }) }).map(({ pfn, pages }) => ({ addr: pfn * PAGE, len: pages * PAGE })) },
), { minLength: 1, maxLength: 12 });

/** The 4 KiB page pieces of a list, in stream order, with the index of their segment. */
export function pieces(list: Seg[]): { addr: number; len: number; seg: number }[] {
  const out: { addr: number; len: number; seg: number }[] = [];
  list.forEach((s, seg) => {
    let addr = s.addr;
    const end = s.addr + s.len;
    while (addr < end) {
      const next = Math.min(end, (Math.floor(addr / PAGE) + 1) * PAGE);
      out.push({ addr, len: next - addr, seg });
      addr = next;
    }
  });
  return out;
}

/** Adjacent pieces whose bytes are physically contiguous, merged. */
export function mergeContiguous<T extends Seg>(list: T[]): Seg[] {
  const out: Seg[] = [];
  for (const p of list) {
    const last = out[out.length - 1];
    if (last && last.addr + last.len === p.addr) last.len += p.len;
    else out.push({ addr: p.addr, len: p.len });
  }
  return out;
}
