import { loadCoreSync, type Core, type EngineName } from '../../src/index';

export const ENGINES: EngineName[] = ['wasm', 'reference'];

/** A fresh core per call, so tests never share memory by accident. */
export function core(engine: EngineName, opts: { shared?: boolean; initialBytes?: number } = {}): Core {
  return loadCoreSync({ engine, ...opts });
}
