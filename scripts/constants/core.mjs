// Core memory layout and the status codes every engine module may return.

export const constants = {
  PAGE_SIZE: 4096,
  // Core memory layout (DESIGN "Memory model"): [null guard | control block | heap ...].
  MEM_NULL_GUARD: 4096,
  MEM_CONTROL_BASE: 4096,
  MEM_CONTROL_SIZE: 4096,
  MEM_HEAP_BASE: 8192,
  MEM_MAX_PAGES: 32768,
  CB_MAGIC: 0,
  CB_VERSION: 4,
  CB_ALLOC_TOP: 8,
  CB_GUEST_BASE: 12,
  CB_GUEST_BYTES: 16,
  // The heap (src/engine/heap.ts): a spin lock, live counters, one free-list head per size class.
  CB_HEAP_LOCK: 20,
  CB_HEAP_LIVE_BLOCKS: 24,
  CB_HEAP_LIVE_BYTES: 28,
  CB_HEAP_FREE_BYTES: 32,
  CB_HEAP_FREE_HEADS: 64,
  HEAP_CLASSES: 104,
  CB_MAGIC_VALUE: 0x52475373, // "sSGR"
  CB_VERSION_VALUE: 2,
};

// Status codes: -1 .. -9 here, each module takes its own block of ten (see the other files).
export const statuses = [
  { name: 'InvalidArgument', value: -1, breaks: false, message: 'an argument is out of range' },
  { name: 'BufferTooSmall', value: -2, breaks: false, message: 'the output buffer is too small' },
  { name: 'OutOfMemory', value: -3, breaks: false, message: 'core memory cannot grow to satisfy the allocation' },
  { name: 'Timeout', value: -4, breaks: false, message: 'the wait ended before the peer acted' },
  { name: 'Disposed', value: -5, breaks: false, message: 'the object was disposed and its memory given back' },
  { name: 'SharedMemoryUnavailable', value: -6, breaks: false, message: 'shared memory needs a cross-origin isolated page (crossOriginIsolated)' },
  { name: 'TapFailed', value: -7, breaks: false, message: 'a tap threw: only its own request failed' },
  { name: 'EmulatorUnsupported', value: -8, breaks: false, message: 'the emulator lacks a hook the binding needs (or is a version not tested)' },
];
