// NVMe data pointers (spec/nvme.md §3 PRP, §4 SGL, §5 status codes): the walk/build
// configuration block and command record the engine reads, the SGL descriptor layout, and the
// encoding of an NVMe completion status as an engine return value. Engine status codes -40 .. -49.

export const constants = {
  // Memory page size bounds this model supports (CC.MPS 0..4). PRP rules are per MPS page.
  NVME_MPS_MIN: 4096,
  NVME_MPS_MAX: 65536,
  NVME_PRP_ENTRY_SIZE: 8,

  // Configuration block (host-written, read by every build/walk call; 8-aligned, 48 bytes).
  NVME_CFG_MPS: 0, // memory page size in bytes, a power of two in [NVME_MPS_MIN, NVME_MPS_MAX]
  NVME_CFG_MAX_BYTES: 4, // MDTS in bytes; 0 = no limit (§3.1 rule 8)
  NVME_CFG_FLAGS: 8, // NVME_WALK_* bits
  NVME_CFG_GUEST_BASE: 12, // core offset of guest-physical address 0
  NVME_CFG_GUEST_BYTES: 16, // size of guest RAM; every list read and data range must fit inside
  NVME_CFG_MAX_MAPPINGS: 20, // data entries / descriptors one walk may map (QEMU: 1024) before 0x06
  NVME_CFG_SCRATCH: 24, // private snapshot area (checklist 27) + PRP visited-list-page table
  NVME_CFG_SCRATCH_BYTES: 28,
  NVME_CFG_MAX_DESCRIPTORS: 32, // SGL descriptors one walk may read (liveness bound, P4)
  NVME_CFG_SIZE: 48,

  // NVME_CFG_FLAGS bits.
  NVME_WALK_MERGE: 1, // merge physically contiguous segments of one command
  NVME_WALK_MASK_PRP1: 2, // clear PRP1 bits 1:0 as bhyve does, instead of failing with 0x13
  NVME_WALK_SGL_EXCESS: 4, // controller advertises SGLS "excess length": extra descriptors allowed
  NVME_WALK_EXTERNAL: 8, // guest RAM is outside core memory: list pages are copied in through the host's guestRead

  // Command record (batch forms; 32 bytes, 8-aligned). The data pointer has the SQE bytes
  // 24..39 layout: PRP1 at 0, PRP2 at 8, or one 16-byte SGL descriptor.
  NVME_CMD_DPTR: 0,
  NVME_CMD_PRP1: 0,
  NVME_CMD_PRP2: 8,
  NVME_CMD_LENGTH: 16, // walk: transfer length in; build: transfer length out
  NVME_CMD_STATUS: 20, // walk: 0 or a negative status; build: pool entries used, or a negative status
  NVME_CMD_FIRST: 24, // index of the command's first segment (walk: output; build: input)
  NVME_CMD_COUNT: 28, // number of segments (walk: output; build: input)
  NVME_CMD_SIZE: 32,

  // SGL descriptor (§4): address u64, length u32, 3 reserved bytes, identifier byte.
  SGL_DESC_SIZE: 16,
  SGL_OFF_ADDR: 0,
  SGL_OFF_LEN: 8,
  SGL_OFF_ID: 15,
  SGL_TYPE_DATA_BLOCK: 0x0,
  SGL_TYPE_BIT_BUCKET: 0x1,
  SGL_TYPE_SEGMENT: 0x2,
  SGL_TYPE_LAST_SEGMENT: 0x3,
  // QEMU reads segments 256 descriptors (4 KiB) at a time; so do we, through the scratch area.
  SGL_CHUNK_DESCRIPTORS: 256,

  // NVMe status as an engine return value: -(reason << 16 | field), where field is the CQE
  // status word shifted right past the phase bit (SC 7:0, SCT 10:8, DNR 14) and reason >= 1
  // names the check that fired. Every such value is <= -65536, so it never collides with the
  // engine's own statuses (-1 .. -99).
  NVME_REASON_SHIFT: 16,
  NVME_FIELD_MASK: 0xffff,
  NVME_SCT_SHIFT: 8,
  NVME_DNR: 0x4000,
  NVME_SCT_GENERIC: 0,
  NVME_SC_INVALID_FIELD: 0x02,
  NVME_SC_DATA_TRANSFER_ERROR: 0x04,
  NVME_SC_INTERNAL_ERROR: 0x06,
  NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR: 0x0d,
  NVME_SC_INVALID_NUMBER_OF_SGL_DESCRIPTORS: 0x0e,
  NVME_SC_DATA_SGL_LENGTH_INVALID: 0x0f,
  NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID: 0x11,
  NVME_SC_PRP_OFFSET_INVALID: 0x13,

  // Reasons (which check of §3.3 / §4 fired). The façade maps them to names.
  NVME_WHY_MDTS: 1, // length > MDTS: Invalid Field + DNR, before any memory is read
  NVME_WHY_PRP1_ALIGN: 2, // PRP1 bits 1:0 set (strict mode): PRP Offset Invalid + DNR
  NVME_WHY_PRP2_ALIGN: 3, // PRP2 used as a data pointer but not page aligned
  NVME_WHY_LIST_PTR_ALIGN: 4, // PRP2 used as a list pointer but not qword aligned
  NVME_WHY_ENTRY_ALIGN: 5, // a PRP list entry not page aligned
  NVME_WHY_CHAIN_ALIGN: 6, // a chain pointer (last slot) not page aligned
  NVME_WHY_CHAIN_LOOP: 7, // a chain pointer to a list page this walk already read: Invalid Field + DNR
  NVME_WHY_LIST_OUTSIDE: 8, // a PRP list or SGL segment read outside guest RAM: Data Transfer Error
  NVME_WHY_DATA_OUTSIDE: 9, // a data range outside guest RAM: Data Transfer Error
  NVME_WHY_TOO_MANY_MAPPINGS: 10, // more mappings than NVME_CFG_MAX_MAPPINGS: Internal Error + DNR
  NVME_WHY_TOO_MANY_LIST_PAGES: 11, // visited-page table in scratch full: Internal Error + DNR
  NVME_WHY_SGL1_TYPE: 12, // SGL1 neither Data Block nor (Last) Segment: 0x0D + DNR
  NVME_WHY_SEGMENT_LENGTH: 13, // (Last) Segment length 0 or not a multiple of 16: 0x0D + DNR
  NVME_WHY_ADDRESS_OVERFLOW: 14, // address + length overflows 64 bits: 0x0F + DNR
  NVME_WHY_SEGMENT_NOT_LAST: 15, // Segment / Last Segment among data descriptors: 0x0E + DNR
  NVME_WHY_DESCRIPTOR_TYPE: 16, // any other descriptor type in a segment: 0x11 + DNR
  NVME_WHY_LAST_ENDS_IN_POINTER: 17, // a Last Segment whose last descriptor is not data: 0x0D + DNR
  NVME_WHY_NO_PROGRESS: 18, // a chained segment mapped no data (QEMU's loop guard): 0x0D + DNR
  NVME_WHY_EXCESS: 19, // data descriptors beyond the transfer without "excess length": 0x0F + DNR
  NVME_WHY_SHORT: 20, // descriptors ran out before the transfer length: 0x0F + DNR
  NVME_WHY_POINTER_TYPE: 21, // the last slot of a Segment is neither Data nor (Last) Segment: 0x0D + DNR
  NVME_WHY_TOO_MANY_DESCRIPTORS: 22, // more descriptors read than NVME_CFG_MAX_DESCRIPTORS: 0x06 + DNR
};

/** Caller errors of the builders and bad configuration (never a guest's fault on the walk side). */
export const statuses = [
  { name: 'NvmeNotDwordAligned', value: -40, breaks: false, message: 'the first segment does not start on a dword (4-byte) boundary (PRP rule 1)' },
  { name: 'NvmeNotPageAligned', value: -41, breaks: false, message: 'a segment after the first does not start on a memory page boundary (PRP rule 5)' },
  { name: 'NvmeNotPageEnd', value: -42, breaks: false, message: 'a segment before the last does not end on a memory page boundary (PRP rule 7)' },
  { name: 'NvmeEmptySegment', value: -43, breaks: false, message: 'a segment has length 0' },
  { name: 'NvmeTransferTooLarge', value: -44, breaks: false, message: 'the transfer exceeds MDTS or 2^32 - 1 bytes' },
  { name: 'NvmeListPoolTooSmall', value: -45, breaks: false, message: 'the list page pool has fewer pages than the PRP/SGL lists need' },
  { name: 'NvmeBadListPage', value: -46, breaks: false, message: 'a list pool page is misaligned, leaves too little room, or lies outside guest RAM' },
  { name: 'NvmeInvalidConfig', value: -47, breaks: false, message: 'the NVMe configuration block is invalid (page size, guest window or scratch area)' },
  { name: 'NvmeCommandFailed', value: -48, breaks: false, message: 'the controller completed the command with an error status' },
  { name: 'NvmeControllerFailed', value: -49, breaks: false, message: 'the controller did not come ready, reported a fatal status, or stopped answering' },
];
