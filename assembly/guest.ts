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

/**
 * The host's copy of guest [gpa, gpa+len) into core memory at dst, for guest RAM that lives
 * outside core memory (an emulator's own memory). Returns 0, or nonzero when the device may
 * not read that range.
 */
// @ts-ignore: decorator
@external("env", "guestRead")
declare function hostGuestRead(dst: usize, gpa: u32, len: u32): i32;

/**
 * Snapshots guest [gpa, gpa+len) into dst (checked with guestRange first): from the guest window,
 * or through the host when `external` (gpa fits in u32 there: the window is below 4 GiB).
 * False when the host refused the read.
 */
// @ts-ignore: decorator
@inline export function guestSnapshot(external: bool, dst: usize, base: usize, gpa: u64, len: u32): bool {
  if (external) return hostGuestRead(dst, <u32>gpa, len) == 0;
  memory.copy(dst, base + <usize>gpa, len);
  return true;
}
