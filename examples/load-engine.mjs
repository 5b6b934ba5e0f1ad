// The ways to load the engine: Wasm or the reference twin, shared memory, attaching to a memory
// another thread laid out, and bringing your own engine bytes (a strict CSP; in a browser, a
// URL: loadCore({ wasm: new URL('sgring/core.wasm', import.meta.url) }) through a bundler).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCore, loadCoreSync } from 'sgring';

const core = await loadCore({ engine: 'wasm' });        // or 'reference': same functions in plain TS
const shared = loadCoreSync({ shared: true, guestBytes: 64 << 20 }); // shared memory; a guest-RAM window
const other = loadCoreSync({ memory: shared.memory });  // attach to a memory laid out by another thread
assert.equal(other.guestBase, shared.guestBase);
const bytes = readFileSync(fileURLToPath(import.meta.resolve('sgring/core.wasm')));
const own = await loadCore({ wasm: bytes });            // bytes | WebAssembly.Module | URL (fetched)
assert.deepEqual([core.engine, shared.shared, own.engine], ['wasm', true, 'wasm']);
console.log(`engines loaded; the shared guest window is ${shared.guestBytes >> 20} MiB at offset ${shared.guestBase}`);
