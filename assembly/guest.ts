// The guest RAM window: guest-physical address g lives at core offset guestBase + g, for
// g < guestBytes (DESIGN "Memory model"). Every access a walker or copier makes on behalf of
// a guest address goes through these checks first; addresses are u64 as on the wire.

/** True when [gpa, gpa+len) lies inside the guest window of `bytes` bytes. Cannot overflow. */
// @ts-ignore: decorator
@inline export function guestRange(bytes: u64, gpa: u64, len: u64): bool {
  return len <= bytes && gpa <= bytes - len;
}

/** Core memory offset of guest-physical address gpa (check guestRange first). */
// @ts-ignore: decorator
@inline export function guestPtr(base: usize, gpa: u64): usize {
  return base + <usize>gpa;
}

/** Joins a lo/hi pair of u32 export arguments into a u64. */
// @ts-ignore: decorator
@inline export function u64of(lo: u32, hi: u32): u64 {
  return (<u64>hi << 32) | <u64>lo;
}
