// The VMBus ring (spec/vmbus.md §1-2): header page, packet framing, and the per-endpoint
// control block and batch formats of the engine. Status codes -10 .. -19.

export const constants = {
  // Ring header page (spec §1.2).
  RING_HEADER_SIZE: 4096,
  RING_OFF_WRITE_INDEX: 0,
  RING_OFF_READ_INDEX: 4,
  RING_OFF_INTERRUPT_MASK: 8,
  RING_OFF_PENDING_SEND_SIZE: 12,
  RING_OFF_FEATURE_BITS: 64,
  RING_FEATURE_PENDING_SEND_SIZE: 1,
  // A ring must stay below 2^32 bytes (checklist item 3); our memory is at most 2 GiB.
  RING_MAX_TOTAL_BYTES: 0x7fff0000,

  // Channel packet header (spec §2.1) and framing (§1.4).
  PKT_HEADER_SIZE: 16,
  PKT_OFF_TYPE: 0,
  PKT_OFF_HLEN: 2,
  PKT_OFF_TLEN: 4,
  PKT_OFF_FLAGS: 6,
  PKT_OFF_TRANSACTION_ID: 8,
  PKT_TRAILER_SIZE: 8,
  // tlen is a u16 count of 8-byte words.
  PKT_MAX_BYTES: 0xffff * 8,
  PKT_TYPE_INBAND: 6,
  PKT_TYPE_RXBUF: 7,
  PKT_TYPE_GPA: 9,
  PKT_TYPE_COMPLETION: 11,
  PKT_FLAG_COMPLETION_REQUESTED: 1,

  // Per-endpoint ring control block: private to one thread's view of a ring, never shared
  // with the peer (the peer could otherwise clear our "broken" mark).
  CTL_RING: 0,
  CTL_DATA_SIZE: 4,
  CTL_ERROR: 8,
  CTL_PENDING_OWNED: 12,
  CTL_RES_SIGNAL: 16,
  CTL_RES_BYTES: 20,
  CTL_PKT_TYPE: 24,
  CTL_PKT_FLAGS: 28,
  CTL_PKT_TID_LO: 32,
  CTL_PKT_TID_HI: 36,
  CTL_PKT_HLEN_BYTES: 40,
  CTL_PKT_TLEN_BYTES: 44,
  CTL_RES_INDEX: 48,
  CTL_SIZE: 64,

  // ringWrite result bits (a non-negative result); 0 means "full, nothing written".
  WRITE_WRITTEN: 1,
  WRITE_SIGNAL: 2,

  // ringRead mode bits.
  READ_PEEK: 1,
  READ_PAYLOAD_ONLY: 2,
  READ_NO_COPY: 4,

  // Gather entry (ringWritev): { ptr u32, len u32 }.
  IOV_SIZE: 8,
  // Batch write descriptor: { src u32, len u32, type u16, flags u16, reserved u32, transactionId u64 }.
  BATCH_DESC_SIZE: 24,
  BATCH_OFF_SRC: 0,
  BATCH_OFF_LEN: 4,
  BATCH_OFF_TYPE: 8,
  BATCH_OFF_FLAGS: 10,
  BATCH_OFF_TID: 16,
};

/**
 * `breaks` marks codes that mean the ring's control data is corrupt: the endpoint is marked
 * broken and keeps returning that code (checklist behaviour B).
 */
export const statuses = [
  { name: 'InvalidRingMemory', value: -10, breaks: false, message: 'ring memory must be a whole number of 4096-byte pages, at least two, and lie inside core memory' },
  { name: 'InvalidMessageLength', value: -11, breaks: false, message: 'the packet can never fit in this ring (it needs the ring size minus 8 bytes or more)' },
  { name: 'InvalidRingPointer', value: -12, breaks: true, message: 'a ring index is outside the data area or not 8-byte aligned' },
  { name: 'InvalidDataAvailable', value: -13, breaks: true, message: 'the ring holds between 1 and 15 bytes: a partial packet header' },
  { name: 'InvalidDescriptorLengths', value: -14, breaks: true, message: 'packet lengths are inconsistent (offset8 < 2, len8 < offset8, or longer than the bytes available)' },
  { name: 'InvalidDescriptorType', value: -15, breaks: true, message: 'packet type is not one of 6 (in-band), 7 (transfer pages), 9 (GPA direct), 11 (completion)' },
  { name: 'InvalidDescriptorFlags', value: -16, breaks: true, message: 'packet flags other than completion-requested are set' },
];
