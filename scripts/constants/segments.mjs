// The segment list every scatter-gather function reads or writes: an array of 16-byte entries
// { addr u64 (guest-physical), len u32, flags u32 }, little-endian, 8-aligned.

export const constants = {
  SEG_SIZE: 16,
  SEG_OFF_ADDR: 0,
  SEG_OFF_LEN: 8,
  SEG_OFF_FLAGS: 12,
};
