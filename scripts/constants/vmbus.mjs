// The VMBus channel layer (spec/vmbus.md §2-3): packet descriptors beyond the 16-byte header,
// channel messages and their SynIC carrier, GPADL limits, the message transport's layout and the
// wire status values the host end answers with. Status codes -60 .. -69.

export const constants = {
  // Channel numbering (spec §0, §6.3 item 20): Linux keeps one event bit per relid, 2048 of them.
  VMBUS_MAX_RELIDS: 2048,

  // Transfer-page packet prefix (spec §2.6): header, pageset id u16, sender_owns u8, reserved u8,
  // range_count u32, then { byte_count u32, byte_offset u32 } ranges.
  XFER_PREFIX_SIZE: 24,
  XFER_OFF_PAGESET_ID: 16,
  XFER_OFF_SENDER_OWNS: 18,
  XFER_OFF_RANGE_COUNT: 20,
  XFER_RANGE_SIZE: 8,

  // SynIC message slot (spec §3.1): type u32, payload_size u8, flags u8, reserved u16, sender u64,
  // payload[240]. Type 1 carries VMBus channel messages.
  SYNIC_MSG_SIZE: 256,
  SYNIC_OFF_TYPE: 0,
  SYNIC_OFF_PAYLOAD_SIZE: 4,
  SYNIC_OFF_FLAGS: 5,
  SYNIC_OFF_SENDER: 8,
  SYNIC_OFF_PAYLOAD: 16,
  SYNIC_MAX_PAYLOAD: 240,
  SYNIC_MSG_TYPE_CHANNEL: 1,
  // HvPostMessage connection ids (spec §3.1): 1 before VMBus 5.0, 4 for INITIATE_CONTACT from 5.0.
  VMBUS_MESSAGE_CONNECTION_ID: 1,
  VMBUS_MESSAGE_CONNECTION_ID_4: 4,

  // Channel message header (spec §3.1) and types (§3.2).
  CHMSG_HEADER_SIZE: 8,
  CHMSG_OFFER: 1,
  CHMSG_RESCIND: 2,
  CHMSG_REQUEST_OFFERS: 3,
  CHMSG_ALL_OFFERS_DELIVERED: 4,
  CHMSG_OPEN_CHANNEL: 5,
  CHMSG_OPEN_RESULT: 6,
  CHMSG_CLOSE_CHANNEL: 7,
  CHMSG_GPADL_HEADER: 8,
  CHMSG_GPADL_BODY: 9,
  CHMSG_GPADL_CREATED: 10,
  CHMSG_GPADL_TEARDOWN: 11,
  CHMSG_GPADL_TORNDOWN: 12,
  CHMSG_RELID_RELEASED: 13,
  CHMSG_INITIATE_CONTACT: 14,
  CHMSG_VERSION_RESPONSE: 15,
  CHMSG_UNLOAD: 16,
  CHMSG_UNLOAD_RESPONSE: 17,
  CHMSG_TL_CONNECT_REQUEST: 21,
  CHMSG_MODIFY_CHANNEL: 22,
  CHMSG_TL_CONNECT_RESULT: 23,
  CHMSG_MODIFY_CHANNEL_RESPONSE: 24,
  // Linux drops msgtype >= CHANNELMSG_COUNT (spec §6.3 item 16).
  CHMSG_COUNT: 25,

  // Fixed sizes of the messages, header included (the minimum a receiver accepts; newer hosts
  // may append fields, so only SYNIC_MAX_PAYLOAD bounds them from above: hardening L1).
  CHMSG_OFFER_SIZE: 196,
  CHMSG_RESCIND_SIZE: 12,
  CHMSG_OPEN_CHANNEL_SIZE: 148,
  CHMSG_OPEN_RESULT_SIZE: 20,
  CHMSG_CLOSE_CHANNEL_SIZE: 12,
  CHMSG_GPADL_HEADER_SIZE: 28, // through the one range's byte_offset; PFNs follow
  CHMSG_GPADL_BODY_SIZE: 16, // through the gpadl handle; PFNs follow
  CHMSG_GPADL_CREATED_SIZE: 20,
  CHMSG_GPADL_TEARDOWN_SIZE: 16,
  CHMSG_GPADL_TORNDOWN_SIZE: 12,
  CHMSG_RELID_RELEASED_SIZE: 12,
  CHMSG_INITIATE_CONTACT_SIZE: 40,
  CHMSG_VERSION_RESPONSE_SIZE: 16,
  CHMSG_MODIFY_CHANNEL_SIZE: 16,
  CHMSG_MODIFY_CHANNEL_RESPONSE_SIZE: 16,
  CHMSG_TL_CONNECT_REQUEST_SIZE: 40,

  // Offer layout (spec §3.4).
  OFFER_OFF_CLASS_ID: 8,
  OFFER_OFF_INSTANCE_ID: 24,
  OFFER_OFF_FLAGS: 56,
  OFFER_OFF_MMIO_MB: 58,
  OFFER_OFF_USER_DEFINED: 60,
  OFFER_USER_DEFINED_SIZE: 120,
  OFFER_OFF_SUB_CHANNEL_INDEX: 180,
  OFFER_OFF_CHILD_RELID: 184,
  OFFER_OFF_MONITOR_ID: 188,
  OFFER_OFF_MONITOR_ALLOCATED: 189,
  OFFER_OFF_DEDICATED_INTERRUPT: 190,
  OFFER_OFF_CONNECTION_ID: 192,
  // Open (spec §3.5).
  OPEN_OFF_USER_DATA: 28,
  OPEN_USER_DATA_SIZE: 120,

  // GPADL (spec §3.6): k <= 26 PFNs in the header (28 + 26*8 = 236), m <= 28 per body
  // (16 + 28*8 = 240); range_buflen = 8 + 8*N must fit a u16, so N <= 8190.
  GPADL_HEADER_MAX_PFNS: 26,
  GPADL_BODY_MAX_PFNS: 28,
  GPADL_MAX_PFNS: 8190,

  // Protocol versions (spec §3.3): (major << 16) | minor.
  VMBUS_VERSION_WS2008: 0x0000000d,
  VMBUS_VERSION_WIN7: 0x00010001,
  VMBUS_VERSION_WIN8: 0x00020004,
  VMBUS_VERSION_WIN8_1: 0x00030000,
  VMBUS_VERSION_WIN10: 0x00040000,
  VMBUS_VERSION_WIN10_RS3: 0x00040001,
  VMBUS_VERSION_WIN10_V5: 0x00050000,
  VMBUS_VERSION_WIN10_V5_1: 0x00050001,
  VMBUS_VERSION_WIN10_V5_2: 0x00050002,
  VMBUS_VERSION_WIN10_V5_3: 0x00050003,

  // Status values the host end puts in OPENCHANNEL_RESULT / GPADL_CREATED / MODIFYCHANNEL_RESPONSE
  // (0 = success; Hyper-V sends NTSTATUS values, these are the ones we use).
  VMBUS_STATUS_SUCCESS: 0,
  VMBUS_STATUS_UNSUCCESSFUL: 0xc0000001,
  VMBUS_STATUS_INVALID_PARAMETER: 0xc000000d,
  VMBUS_STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  VMBUS_STATUS_INVALID_DEVICE_STATE: 0xc0000184,

  // Message transport (src/vmbus/transport.ts): a header page, then two queues of SynIC slots.
  // Header: magic, slots per queue, the two doorbells, each queue's tail (producer) and head
  // (consumer) counters, and the two event-flag bitmaps (one bit per relid, spec §1.10) with
  // their summaries.
  XPORT_OFF_MAGIC: 0,
  XPORT_OFF_SLOTS: 4,
  XPORT_OFF_HOST_BELL: 8,
  XPORT_OFF_GUEST_BELL: 12,
  XPORT_OFF_G2H_TAIL: 64,
  XPORT_OFF_G2H_HEAD: 68,
  XPORT_OFF_H2G_TAIL: 128,
  XPORT_OFF_H2G_HEAD: 132,
  XPORT_OFF_G2H_EVENTS: 1024,
  XPORT_OFF_H2G_EVENTS: 2048,
  // One summary bit per 32-bit event word (64 words -> two u32), so an idle poll reads two
  // words instead of 64.
  XPORT_OFF_G2H_SUMMARY: 1008,
  XPORT_OFF_H2G_SUMMARY: 2032,
  XPORT_EVENT_BYTES: 256,
  XPORT_HEADER_SIZE: 4096,
  XPORT_MAGIC: 0x54424d56, // "VMBT"
  XPORT_MAX_SLOTS: 256,
};

/**
 * Channel-layer status codes. `breaks` marks the two that mean the peer corrupted data we cannot
 * resynchronise from (a packet header that contradicts its own type, or the message queue's
 * indices): the channel (or transport) is then marked broken (checklist behaviour B).
 */
export const statuses = [
  { name: 'MessageTooShort', value: -60, breaks: false, message: 'a channel message is shorter than the fixed size of its type (spec §3.2-3.6; hardening L1)' },
  { name: 'MessageTooLong', value: -61, breaks: false, message: 'a channel message payload is longer than 240 bytes, the SynIC maximum (spec §3.1)' },
  { name: 'UnknownMessageType', value: -62, breaks: false, message: 'a channel message type this end has no handler for (0, 18-20, >= 25, or the other direction\'s)' },
  { name: 'RelidOutOfRange', value: -63, breaks: false, message: 'a channel relid at or above 2048 (spec §6.3 item 20)' },
  { name: 'DuplicateOffer', value: -64, breaks: false, message: 'an offer for a relid already in use, a second primary for one GUID pair, a repeated sub-channel index, or a sub-channel without its primary' },
  { name: 'ChannelRescinded', value: -65, breaks: false, message: 'the host rescinded the channel; requests in flight fail with this error once' },
  { name: 'ChannelClosed', value: -66, breaks: false, message: 'the channel is closed (or closing); requests in flight fail with this error once' },
  { name: 'HostRefused', value: -67, breaks: false, message: 'the host answered with a non-zero status or refused every protocol version (details.status)' },
  { name: 'PacketHeaderTooShort', value: -68, breaks: true, message: 'a GPA-direct or transfer-page packet whose data offset lies inside its 24-byte type header (hardening §3.2 item 13)' },
  { name: 'TransportBroken', value: -69, breaks: true, message: 'the channel-message queue counters are inconsistent (more messages claimed than slots)' },
];
