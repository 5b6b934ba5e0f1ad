// GPA ranges (spec/vmbus.md §2.5), the page-list rule table (§4.7) and the batch legality
// classifier: wire layout, result block, class bits. Status codes -20 .. -29.

export const constants = {
  // GPA-direct packet prefix (§2.5): 16-byte header, reserved u32, range_count u32.
  GPA_DIRECT_PREFIX_SIZE: 24,
  GPA_DIRECT_OFF_RANGE_COUNT: 20,
  // One GPA range: { byte_count u32, byte_offset u32, pfn u64[N] }, N = ceil((offset+count)/4096).
  GPA_RANGE_HEADER_SIZE: 8,
  GPA_RANGE_OFF_BYTE_COUNT: 0,
  GPA_RANGE_OFF_BYTE_OFFSET: 4,
  GPA_PFN_SIZE: 8,
  GPA_PAGE_SHIFT: 12,
  GPA_MAX_BYTE_OFFSET: 0xfff,
  // byte_offset + byte_count + 4095 must not overflow a u32 (OpenVMM gparange, hardening §1.6 O2),
  // i.e. byte_count <= GPA_COUNT_LIMIT - byte_offset.
  GPA_COUNT_LIMIT: 0xfffff000,
  // A PFN must stay below 2^40: addresses below 2^52, the widest physical address x86-64 and
  // arm64 define. It rules out PFN*4096 overflowing a u64 and keeps every address a safe JS integer.
  GPA_PFN_BITS: 40,
  GPA_ADDR_BITS: 52,
  // Single-page list entry (§2.5): a range with exactly one PFN.
  GPA_PAGE_ENTRY_SIZE: 16,

  // gpaEncodeMulti modes: fewest ranges (join a segment to the open range whenever the
  // §4.7 rule allows), or one range per segment (as Linux netvsc_build_mpb_array does).
  GPA_MULTI_MERGE: 0,
  GPA_MULTI_PER_SEGMENT: 1,
  // gpaDecode flags: default merges physically contiguous pages of one range into one segment.
  GPA_DECODE_PER_PAGE: 1,

  // Result block (16 bytes, 4-aligned) every page-list function fills besides its return value.
  // On success: INDEX 0, BYTES = bytes written (encode) / consumed (decode), COUNT = ranges
  // written (encode) / segments emitted (decode). On error: INDEX = offending segment or range,
  // BYTES = bytes needed (BufferTooSmall) or the offending range's offset in the input (decode),
  // COUNT = ranges/segments needed (BufferTooSmall), DETAIL = the offending segment's class
  // byte (PageListRule) or the PFN's index inside its range (decode).
  PL_RES_INDEX: 0,
  PL_RES_BYTES: 4,
  PL_RES_COUNT: 8,
  PL_RES_DETAIL: 12,
  PL_RES_SIZE: 16,

  // Classifier rules and page sizes (4 KiB .. 128 MiB: every NVMe MPS; Hyper-V is always 4 KiB).
  PL_RULE_HYPERV: 0,
  PL_RULE_NVME_PRP: 1,
  PL_MIN_PAGE_SIZE: 4096,
  PL_MAX_PAGE_SIZE: 0x8000000,

  // One class byte per segment. Bits 0-1: position in the list.
  CLS_POS_MASK: 3,
  CLS_ONLY: 0,
  CLS_FIRST: 1,
  CLS_MIDDLE: 2,
  CLS_LAST: 3,
  CLS_START_ALIGNED: 4, // starts at offset 0 of its page
  CLS_END_ALIGNED: 8, // ends exactly at a page end (addr + len ≡ 0 mod page size)
  CLS_VIOLATION: 16, // breaks the rule table for its position
  CLS_EMPTY: 32, // len == 0: no page list can describe it
  CLS_DWORD_MISALIGNED: 64, // addr & 3 != 0 (a violation for the first entry under the NVMe PRP rule)
  CLS_OVERFLOW: 128, // addr + len passes 2^64
};

export const statuses = [
  { name: 'PageListRule', value: -20, breaks: false, message: 'a segment breaks the page-list rule (spec §4.7): a hole would open in the stream the host reads' },
  { name: 'GpaRangeCountZero', value: -21, breaks: false, message: 'a GPA-direct packet must carry at least one range (range_count = 0)' },
  { name: 'GpaRangeTooSmall', value: -22, breaks: false, message: 'the bytes end before the ranges do: fewer PFNs (or range headers) present than range_count and byte_count require' },
  { name: 'GpaEmptyByteCount', value: -23, breaks: false, message: 'a GPA range with byte_count = 0' },
  { name: 'GpaOffsetTooLarge', value: -24, breaks: false, message: 'a GPA range byte_offset above 0xFFF (it must lie inside the first 4 KiB page)' },
  { name: 'GpaOverflow', value: -25, breaks: false, message: 'byte_offset + byte_count (+ 4095) overflows 32 bits' },
  { name: 'GpaPfnTooLarge', value: -26, breaks: false, message: 'a PFN at or above 2^40 (guest-physical address beyond 52 bits)' },
  { name: 'GpaPfnCountMismatch', value: -27, breaks: false, message: 'the PFN list length differs from ceil((byte_offset + byte_count) / 4096)' },
];
