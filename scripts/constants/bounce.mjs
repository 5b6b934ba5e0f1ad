// The bounce planner and bounce copies (spec/vmbus.md §4.7, nvme.md §3): the plan image the
// planner writes and the copy functions read. Status codes -30 .. -39.

export const constants = {
  // Page-list rules.
  RULE_HYPERV: 0,
  RULE_NVME_PRP: 1,
  PAGE_SIZE_MIN: 4096,
  PAGE_SIZE_MAX: 65536,
  NO_PAGE_LIMIT: 0xffffffff,
  // Guest-physical addresses stay below 2^52 (x86's widest physical address), so they are exact
  // as JavaScript numbers: the limit is 2^52 as a lo/hi pair.
  GPA_LIMIT_MAX_LO: 0,
  GPA_LIMIT_MAX_HI: 0x100000,

  // Plan image: header, then pageCount page entries, then copyCount copy entries.
  PLAN_BYTE_OFFSET: 0,
  PLAN_BYTE_COUNT: 4,
  PLAN_PAGE_COUNT: 8,
  PLAN_COPY_COUNT: 12,
  PLAN_BOUNCED_BYTES: 16,
  PLAN_BOUNCE_PAGES: 20,
  PLAN_PAGE_SIZE: 24,
  PLAN_NEEDED: 28, // bytes the image needs (also set when the buffer was too small)
  PLAN_BAD_INDEX: 32, // segment or pool entry an error refers to
  PLAN_HEADER_SIZE: 40,
  // Page entry: { frame u64, bounce index u32 (NOT_BOUNCED for the caller's own page), reserved u32 }.
  PAGE_ENTRY_SIZE: 16,
  PAGE_OFF_FRAME: 0,
  PAGE_OFF_BOUNCE: 8,
  NOT_BOUNCED: 0xffffffff,
  // Copy entry: { segment u32, segmentOffset u32, dest u64 (guest-physical), length u32, streamOffset u32 }.
  COPY_ENTRY_SIZE: 24,
  COPY_OFF_SEGMENT: 0,
  COPY_OFF_SEGMENT_OFFSET: 4,
  COPY_OFF_DEST: 8,
  COPY_OFF_LENGTH: 16,
  COPY_OFF_STREAM: 20,
};

export const statuses = [
  { name: 'EmptySegmentList', value: -30, breaks: false, message: 'the segment list is empty' },
  { name: 'ZeroLengthSegment', value: -31, breaks: false, message: 'a segment has length 0' },
  { name: 'OutsideGuestRam', value: -32, breaks: false, message: 'a segment or bounce page lies (partly) outside guest RAM' },
  { name: 'TransferTooLarge', value: -33, breaks: false, message: 'the transfer is 4 GiB or longer' },
  { name: 'TooManyPages', value: -34, breaks: false, message: 'the page list would need more entries than maxPages allows' },
  { name: 'BouncePoolTooSmall', value: -35, breaks: false, message: 'the plan needs more bounce pages than the pool holds' },
  { name: 'BadBouncePage', value: -36, breaks: false, message: 'a bounce page is not aligned to the page size, is listed twice, or overlaps the transfer' },
  { name: 'InvalidPageSize', value: -37, breaks: false, message: 'page size must be a power of two from 4096 to 65536 (4096 for Hyper-V)' },
  { name: 'BounceTransitionFailed', value: -39, breaks: false, message: 'making a bounce page shared with the host (or private again) failed; the page is quarantined' },
  { name: 'InvalidPlan', value: -38, breaks: false, message: 'the plan image does not match its segment list' },
];
