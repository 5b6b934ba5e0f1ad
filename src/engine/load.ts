import { CORE_THREADS_WASM_BASE64, CORE_WASM_BASE64 } from '../generated/core-wasm';
import { MEM_HEAP_BASE, MEM_MAX_PAGES } from '../generated/constants';
import { createReferenceEngine } from '../reference/engine';
import { Core } from './core';
import { SgringError } from './errors';
import type { EngineFunctions, EngineName } from './types';
import { isSharedBuffer, type WasmMemory, type WasmModule } from './wasm-types';
import { checkOptionNames, describe } from './describe';

/**
 * Where the Wasm engine comes from when the embedded copy is not wanted: its bytes, a compiled
 * WebAssembly.Module, or a URL (a URL object or a string; fetched by loadCore).
 */
export type WasmSource = ArrayBuffer | ArrayBufferView | WasmModule | { readonly href: string } | string;

export interface LoadCoreOptions {
  /** 'wasm' (default) or 'reference' (the pure-TypeScript twin, same memory, same results). */
  engine?: EngineName;
  /**
   * Use this memory instead of creating one. A memory already laid out by sgring (for example
   * one made in another thread) is attached to; any other memory is laid out afresh.
   * At most 32768 pages (2 GiB) maximum.
   */
  memory?: WasmMemory;
  /**
   * Create a shared memory (SharedArrayBuffer) for use from several threads. In a browser this
   * needs a cross-origin isolated page (COOP + COEP headers); elsewhere it throws
   * SharedMemoryUnavailable.
   */
  shared?: boolean;
  /** Size of the guest RAM window reserved at creation, in bytes (default 0). */
  guestBytes?: number;
  /** Initial memory size in bytes for a created memory (default 1 MiB, at least what the layout needs). */
  initialBytes?: number;
  /**
   * The engine build to use instead of the embedded one: bytes, a compiled module, or a URL
   * (fetched; async only). It must be the build matching the memory: dist/core.wasm for a
   * non-shared memory, dist/core-threads.wasm for a shared one.
   */
  wasm?: WasmSource;
}

const WASM_PAGE = 65536;
const OPTION_NAMES = ['engine', 'memory', 'shared', 'guestBytes', 'initialBytes', 'wasm'];

/** Refuses option names loadCore does not know (a typo would otherwise be silently ignored). */
function checkOptions(opts: LoadCoreOptions): void {
  if (opts === null || typeof opts !== 'object') throw new SgringError('InvalidArgument', 'loadCore options must be an object');
  checkOptionNames(opts, OPTION_NAMES, 'loadCore', (m) => new SgringError('InvalidArgument', m));
}

/**
 * Shared memory exists only where SharedArrayBuffer does: in Node, in workers, and in browser
 * pages served cross-origin isolated. Elsewhere a shared WebAssembly.Memory may still be created
 * but cannot be handed to a worker, so asking for one is refused here, once, with the fix.
 */
function checkSharedAvailable(): void {
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (typeof SharedArrayBuffer === 'undefined' || g.crossOriginIsolated === false) {
    throw new SgringError('SharedMemoryUnavailable',
      'shared memory needs SharedArrayBuffer, which a browser gives only to a cross-origin isolated page ' +
      '(crossOriginIsolated is false here): serve the page with the headers ' +
      '"Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp", ' +
      'or load without { shared: true } and keep every ring in one thread');
  }
}
const moduleCache = new Map<string, WebAssembly.Module>();

function decodeBase64(b64: string): Uint8Array {
  if (typeof atob === 'function') {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  throw new SgringError('InvalidArgument', 'this runtime has no atob(); pass the engine bytes in options.wasm');
}

function embeddedModule(shared: boolean): WebAssembly.Module {
  const key = shared ? 'threads' : 'plain';
  let m = moduleCache.get(key);
  if (!m) {
    m = new WebAssembly.Module(decodeBase64(shared ? CORE_THREADS_WASM_BASE64 : CORE_WASM_BASE64) as BufferSource);
    moduleCache.set(key, m);
  }
  return m;
}

async function embeddedModuleAsync(shared: boolean): Promise<WebAssembly.Module> {
  const key = shared ? 'threads' : 'plain';
  let m = moduleCache.get(key);
  if (!m) {
    m = await WebAssembly.compile(decodeBase64(shared ? CORE_THREADS_WASM_BASE64 : CORE_WASM_BASE64) as BufferSource);
    moduleCache.set(key, m);
  }
  return m;
}

function makeMemory(opts: LoadCoreOptions): WebAssembly.Memory {
  if (opts.memory !== undefined) {
    if (!(opts.memory instanceof WebAssembly.Memory)) throw new SgringError('InvalidArgument', `options.memory must be a WebAssembly.Memory (got ${describe(opts.memory)})`);
    return opts.memory;
  }
  const guest = opts.guestBytes ?? 0;
  if (!Number.isInteger(guest) || guest < 0 || guest > MEM_MAX_PAGES * WASM_PAGE - MEM_HEAP_BASE) {
    throw new SgringError('InvalidArgument', `guestBytes ${describe(guest)} must be a non-negative integer below 2 GiB`);
  }
  const init = opts.initialBytes ?? 1 << 20;
  if (!Number.isInteger(init) || init < 0 || init > MEM_MAX_PAGES * WASM_PAGE) {
    throw new SgringError('InvalidArgument', `initialBytes ${describe(init)} must be a non-negative integer of at most 2 GiB`);
  }
  if (opts.shared !== undefined && typeof opts.shared !== 'boolean') throw new SgringError('InvalidArgument', `shared must be true or false (got ${describe(opts.shared)})`);
  if (opts.shared) checkSharedAvailable();
  const want = Math.max(init, MEM_HEAP_BASE + guest + 4096);
  const initial = Math.min(Math.ceil(want / WASM_PAGE), MEM_MAX_PAGES);
  const desc = { initial, maximum: MEM_MAX_PAGES, shared: !!opts.shared };
  return new WebAssembly.Memory(desc as WebAssembly.MemoryDescriptor);
}

function isShared(memory: WebAssembly.Memory): boolean {
  return isSharedBuffer(memory.buffer);
}

function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory, core: Core): EngineFunctions {
  try {
    const guestRead = (dst: number, gpa: number, len: number) => core.guestRead(dst, gpa, len);
    return new WebAssembly.Instance(module, { env: { memory, guestRead } }).exports as unknown as EngineFunctions;
  } catch (e) {
    throw new SgringError('InvalidArgument', `the engine could not be linked to this memory (${(e as Error).message}); ` +
      'a shared memory needs the threads build and a maximum of at most 32768 pages');
  }
}

function build(opts: LoadCoreOptions, module: WebAssembly.Module | null): Core {
  const engine = opts.engine ?? 'wasm';
  const memory = makeMemory(opts);
  const makeFn = engine === 'wasm'
    ? (core: Core) => instantiate(module ?? embeddedModule(isShared(memory)), memory, core)
    : (core: Core) => createReferenceEngine(core);
  return new Core(engine, memory, makeFn, opts.guestBytes ?? 0);
}

/** Checks the options; returns the engine source to compile, or null for the embedded one or the reference engine. */
function engineSource(opts: LoadCoreOptions): WasmSource | null {
  checkOptions(opts);
  const engine = opts.engine ?? 'wasm';
  if (engine !== 'wasm' && engine !== 'reference') throw new SgringError('InvalidArgument', `unknown engine '${String(engine)}' (use 'wasm' or 'reference')`);
  if (opts.shared && opts.memory === undefined) checkSharedAvailable();
  return engine === 'wasm' && opts.wasm !== undefined ? opts.wasm : null;
}

const isUrl = (src: WasmSource): src is { readonly href: string } | string =>
  typeof src === 'string' || (typeof URL !== 'undefined' && src instanceof URL);

/**
 * Loads an engine synchronously (Node, workers, and browsers for the small embedded module).
 * A URL in options.wasm needs the async loadCore.
 */
export function loadCoreSync(opts: LoadCoreOptions = {}): Core {
  const src = engineSource(opts);
  let module: WebAssembly.Module | null = null;
  if (src !== null) {
    if (src instanceof WebAssembly.Module) module = src;
    else if (isUrl(src)) throw new SgringError('InvalidArgument', 'loadCoreSync cannot fetch a URL; use loadCore');
    else module = new WebAssembly.Module(src as BufferSource);
  }
  return build(opts, module);
}

/** Loads an engine; compiles asynchronously, and may fetch the engine from a URL. */
export async function loadCore(opts: LoadCoreOptions = {}): Promise<Core> {
  const src = engineSource(opts);
  let module: WebAssembly.Module | null = null;
  if ((opts.engine ?? 'wasm') === 'wasm') {
    if (src === null) {
      module = await embeddedModuleAsync(opts.memory ? isShared(opts.memory as WebAssembly.Memory) : !!opts.shared);
    } else if (src instanceof WebAssembly.Module) module = src;
    else if (isUrl(src)) {
      const res = await fetch(String(src));
      if (!res.ok) throw new SgringError('InvalidArgument', `fetching the engine from ${String(src)} failed: HTTP ${res.status}`);
      module = await WebAssembly.compile(await res.arrayBuffer());
    } else module = await WebAssembly.compile(src as BufferSource);
  }
  return build(opts, module);
}
