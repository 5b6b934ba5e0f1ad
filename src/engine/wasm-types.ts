// The WebAssembly objects the public API takes and returns, named by their shape so the bundled
// types compile in a project without the DOM lib (lib: ["ES2022"] and no @types/node has no
// WebAssembly namespace). A real WebAssembly.Memory or Module fits them.

/** A WebAssembly.Memory: what loadCore creates or attaches to, and Core.memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

/** A compiled WebAssembly.Module (opaque). */
export interface WasmModule {
  readonly [Symbol.toStringTag]?: string;
}

/**
 * True for a SharedArrayBuffer, also where the global is hidden (a browser page that is not
 * cross-origin isolated can still be handed one by a shared WebAssembly.Memory).
 */
export function isSharedBuffer(b: unknown): boolean {
  return Object.prototype.toString.call(b) === '[object SharedArrayBuffer]';
}
