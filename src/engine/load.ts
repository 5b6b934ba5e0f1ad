import { CORE_THREADS_WASM_BASE64, CORE_WASM_BASE64 } from '../generated/core-wasm';
import { MEM_HEAP_BASE, MEM_MAX_PAGES } from '../generated/constants';
import { createReferenceEngine } from '../reference/engine';
import { Core } from './core';
import { SgringError } from './errors';
import type { EngineFunctions, EngineName } from './types';

/** Where the Wasm engine comes from when the embedded copy is not wanted (e.g. a strict CSP). */
export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

export interface LoadCoreOptions {
  /** 'wasm' (default) or 'reference' (the pure-TypeScript twin, same memory, same results). */
  engine?: EngineName;
  /**
   * Use this memory instead of creating one. A memory already laid out by sgring (for example
   * one made in another thread) is attached to; any other memory is laid out afresh.
   * At most 32768 pages (2 GiB) maximum.
   */
  memory?: WebAssembly.Memory;
  /** Create a shared memory (SharedArrayBuffer) for use from several threads. */
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
  if (opts.memory) {
    if (!(opts.memory instanceof WebAssembly.Memory)) throw new SgringError('InvalidArgument', 'options.memory must be a WebAssembly.Memory');
    return opts.memory;
  }
  const guest = opts.guestBytes ?? 0;
  if (!Number.isInteger(guest) || guest < 0 || guest > MEM_MAX_PAGES * WASM_PAGE - MEM_HEAP_BASE) {
    throw new SgringError('InvalidArgument', `guestBytes ${guest} must be a non-negative integer below 2 GiB`);
  }
  const want = Math.max(opts.initialBytes ?? 1 << 20, MEM_HEAP_BASE + guest + 4096);
  const initial = Math.min(Math.ceil(want / WASM_PAGE), MEM_MAX_PAGES);
  const desc = { initial, maximum: MEM_MAX_PAGES, shared: !!opts.shared };
  return new WebAssembly.Memory(desc as WebAssembly.MemoryDescriptor);
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): EngineFunctions {
  try {
    return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as EngineFunctions;
  } catch (e) {
    throw new SgringError('InvalidArgument', `the engine could not be linked to this memory (${(e as Error).message}); ` +
      'a shared memory needs the threads build and a maximum of at most 32768 pages');
  }
}

function build(opts: LoadCoreOptions, module: WebAssembly.Module | null): Core {
  const engine = opts.engine ?? 'wasm';
  if (engine !== 'wasm' && engine !== 'reference') throw new SgringError('InvalidArgument', `unknown engine '${String(engine)}'`);
  const memory = makeMemory(opts);
  const makeFn = engine === 'wasm'
    ? () => instantiate(module ?? embeddedModule(isShared(memory)), memory)
    : (core: Core) => createReferenceEngine(core);
  return new Core(engine, memory, makeFn, opts.guestBytes ?? 0);
}

/**
 * Loads an engine synchronously (Node, workers, and browsers for the small embedded module).
 * A URL in options.wasm needs the async loadCore.
 */
export function loadCoreSync(opts: LoadCoreOptions = {}): Core {
  let module: WebAssembly.Module | null = null;
  if ((opts.engine ?? 'wasm') === 'wasm' && opts.wasm !== undefined) {
    const src = opts.wasm;
    if (src instanceof WebAssembly.Module) module = src;
    else if (src instanceof URL || typeof src === 'string') {
      throw new SgringError('InvalidArgument', 'loadCoreSync cannot fetch a URL; use loadCore');
    } else module = new WebAssembly.Module(src);
  }
  return build(opts, module);
}

/** Loads an engine; compiles asynchronously, and may fetch the engine from a URL. */
export async function loadCore(opts: LoadCoreOptions = {}): Promise<Core> {
  let module: WebAssembly.Module | null = null;
  if ((opts.engine ?? 'wasm') === 'wasm') {
    const src = opts.wasm;
    if (src === undefined) {
      const shared = opts.memory ? isShared(opts.memory) : !!opts.shared;
      module = await embeddedModuleAsync(shared);
    } else if (src instanceof WebAssembly.Module) module = src;
    else if (src instanceof URL || typeof src === 'string') {
      const res = await fetch(src);
      if (!res.ok) throw new SgringError('InvalidArgument', `fetching the engine from ${String(src)} failed: HTTP ${res.status}`);
      module = await WebAssembly.compile(await res.arrayBuffer());
    } else module = await WebAssembly.compile(src);
  }
  return build(opts, module);
}
