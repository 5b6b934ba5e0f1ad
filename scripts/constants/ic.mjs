// Integration-component ("util") channels: heartbeat, shutdown, timesync, KVP
// (spec/vmbus.md §3.4 end, §6.4). Every offset below is a byte offset in the in-band packet
// payload (pipe header at 0, IC header at 8, body at 28) or, for *_BODY_* / KVP_*, in the body.
// Facts checked against Linux include/linux/hyperv.h + include/uapi/linux/hyperv.h, FreeBSD
// sys/dev/hyperv/utilities/vmbus_icreg.h and OpenVMM hyperv_ic_protocol (see the report).
// Status codes -70 .. -79.

export const constants = {
  // Pipe header { type u32, size u32 }: size = bytes of IC header + body that follow it.
  IC_PIPE_HEADER_SIZE: 8,
  IC_PIPE_OFF_TYPE: 0,
  IC_PIPE_OFF_SIZE: 4,
  IC_PIPE_TYPE_DATA: 1,

  // IC header (20 bytes after the pipe header; Linux ICMSG_HDR = 28 for both).
  IC_HEADER_SIZE: 20,
  IC_HEADERS_SIZE: 28,
  IC_OFF_FRAMEWORK_VERSION: 8,
  IC_OFF_MSGTYPE: 12,
  IC_OFF_MESSAGE_VERSION: 14,
  IC_OFF_MSGSIZE: 18,
  IC_OFF_STATUS: 20,
  IC_OFF_TRANSACTION_ID: 24,
  IC_OFF_FLAGS: 25,
  IC_OFF_RESERVED: 26,

  // icmsgtype values.
  IC_MSGTYPE_NEGOTIATE: 0,
  IC_MSGTYPE_HEARTBEAT: 1,
  IC_MSGTYPE_KVP: 2,
  IC_MSGTYPE_SHUTDOWN: 3,
  IC_MSGTYPE_TIMESYNC: 4,
  IC_MSGTYPE_VSS: 5,
  IC_MSGTYPE_FCOPY: 7,

  // icflags bits.
  IC_FLAG_TRANSACTION: 1,
  IC_FLAG_REQUEST: 2,
  IC_FLAG_RESPONSE: 4,

  // Status words (HRESULTs) carried in the IC header.
  IC_STATUS_OK: 0,
  IC_STATUS_FAIL: 0x80004005,
  IC_STATUS_NO_MORE_ITEMS: 0x80070103, // Linux HV_S_CONT: KVP "not found" / end of enumeration
  IC_STATUS_NOT_SUPPORTED: 0x80070032,
  IC_STATUS_INVALID_ARG: 0x80070057,

  // Negotiate body: { fw count u16, msg count u16, reserved u32, versions[count] { major u16, minor u16 } }.
  IC_NEGOTIATE_OFF_FW_COUNT: 0,
  IC_NEGOTIATE_OFF_MSG_COUNT: 2,
  IC_NEGOTIATE_OFF_VERSIONS: 8,
  IC_NEGOTIATE_COUNTS_SIZE: 4,
  IC_VERSION_SIZE: 4,
  IC_NEGOTIATE_MAX_COUNT: 100, // Linux IC_VERSION_NEGOTIATION_MAX_VER_COUNT
  IC_NEGOTIATE_RESPONSE_SIZE: 16, // one framework + one message version (Linux icmsgsize = 0x10)

  // Heartbeat body: { seq_num u64, reserved u32[8] }; only seq_num is required (§6.4 item 26).
  IC_HEARTBEAT_BODY_SIZE: 40,
  IC_HEARTBEAT_MIN_BODY: 8,

  // Shutdown body: { reason u32, timeout u32, flags u32, message[2048] } (Linux requires all 2060).
  IC_SHUTDOWN_OFF_REASON: 0,
  IC_SHUTDOWN_OFF_TIMEOUT: 4,
  IC_SHUTDOWN_OFF_FLAGS: 8,
  IC_SHUTDOWN_OFF_MESSAGE: 12,
  IC_SHUTDOWN_MESSAGE_SIZE: 2048,
  IC_SHUTDOWN_BODY_SIZE: 2060,
  IC_SHUTDOWN_FLAG_FORCE: 1,
  IC_SHUTDOWN_FLAG_RESTART: 2,
  IC_SHUTDOWN_FLAG_HIBERNATE: 4,

  // Timesync before 4.0: { parent u64, child u64, round trip u64, flags u8 } (+3 reserved in OpenVMM).
  IC_TIMESYNC_V3_BODY_SIZE: 28,
  IC_TIMESYNC_V3_MIN_BODY: 25,
  IC_TIMESYNC_V3_OFF_FLAGS: 24,
  // Timesync 4.0: { parent u64, vm reference time u64, flags u8, leap u8, stratum u8, reserved }.
  IC_TIMESYNC_V4_BODY_SIZE: 24,
  IC_TIMESYNC_V4_MIN_BODY: 22,
  IC_TIMESYNC_V4_OFF_FLAGS: 16,
  IC_TIMESYNC_FLAG_PROBE: 0,
  IC_TIMESYNC_FLAG_SYNC: 1,
  IC_TIMESYNC_FLAG_SAMPLE: 2,

  // KVP body: { op u8, pool u8, pad u16 } then one of the operation structs; always 2580 bytes.
  KVP_OP_GET: 0,
  KVP_OP_SET: 1,
  KVP_OP_DELETE: 2,
  KVP_OP_ENUMERATE: 3,
  KVP_OP_GET_IP_INFO: 4,
  KVP_OP_SET_IP_INFO: 5,
  KVP_POOL_EXTERNAL: 0,
  KVP_POOL_GUEST: 1,
  KVP_POOL_AUTO: 2,
  KVP_POOL_AUTO_EXTERNAL: 3,
  KVP_POOL_AUTO_INTERNAL: 4,
  KVP_POOL_COUNT: 5,
  KVP_HEADER_SIZE: 4,
  KVP_MAX_KEY_BYTES: 512,
  KVP_MAX_VALUE_BYTES: 2048,
  // Value struct { type u32, key size u32, value size u32, key[512], value[2048] } = 2572 bytes.
  KVP_VALUE_OFF_TYPE: 0,
  KVP_VALUE_OFF_KEY_SIZE: 4,
  KVP_VALUE_OFF_VALUE_SIZE: 8,
  KVP_VALUE_OFF_KEY: 12,
  KVP_VALUE_OFF_VALUE: 524,
  KVP_VALUE_SIZE: 2572,
  // Where each operation's struct starts in the body, and the fixed size it needs.
  KVP_GETSET_OFF_VALUE: 4,
  KVP_ENUM_OFF_INDEX: 4,
  KVP_ENUM_OFF_VALUE: 8,
  KVP_DELETE_OFF_KEY_SIZE: 4,
  KVP_DELETE_OFF_KEY: 8,
  KVP_GETSET_MIN_BODY: 2576,
  KVP_ENUM_MIN_BODY: 2580,
  KVP_DELETE_MIN_BODY: 520,
  KVP_BODY_SIZE: 2580,
  // Registry value types: REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD (OpenVMM, Windows) and
  // Linux's REG_U64 = 8 (include/uapi/linux/hyperv.h), accepted as a 64-bit value too.
  KVP_TYPE_STRING: 1,
  KVP_TYPE_EXPAND_STRING: 2,
  KVP_TYPE_U32: 4,
  KVP_TYPE_U64_LINUX: 8,
  KVP_TYPE_U64: 11,
};

/** Errors of the IC codecs and endpoints. None marks a ring broken: IC faults fail one message. */
export const statuses = [
  { name: 'IcTruncated', value: -70, breaks: false, message: 'an IC message is shorter than its pipe header, IC header or its type\'s fixed body' },
  { name: 'IcLengthMismatch', value: -71, breaks: false, message: 'an IC length field (pipe size or icmsgsize) claims more bytes than the packet carries' },
  { name: 'IcBadPipeHeader', value: -72, breaks: false, message: 'the pipe header type is not 1 (data)' },
  { name: 'IcBadVersionList', value: -73, breaks: false, message: 'a negotiate message has a version count of 0 or over 100, or counts implying more version pairs than present' },
  { name: 'IcNegotiationFailed', value: -74, breaks: false, message: 'no framework or message version is supported by both ends, or the peer refused' },
  { name: 'IcUnexpectedMessage', value: -75, breaks: false, message: 'an IC message of the wrong type, flags or contents for this exchange' },
  { name: 'IcBadKvpField', value: -76, breaks: false, message: 'a KVP key or value size is odd, beyond its field, lacks its terminator, or is not valid UTF-16' },
  { name: 'IcNotNegotiated', value: -77, breaks: false, message: 'the IC channel has not negotiated versions' },
  { name: 'IcPeerStatus', value: -78, breaks: false, message: 'the peer answered with a failure status' },
  { name: 'IcAborted', value: -79, breaks: false, message: 'the IC request was aborted before the peer answered' },
];
