// Suite "taps": what a stage costs a device's hot path. The path is one 64-byte request through
// a VMBus ring (write + read, the wasm engine) with two stages around it, as a device has them
// (decode before, writeback after). Three variants, timed in one isolate and in rounds: no stage
// at all, two stages with nothing attached (the device's null check), and a no-op tap on each.
// (In separate isolates the variants' JIT luck differs by more than the check costs.)

import { loadCoreSync, TapRegistry, VmbusRing } from '../../dist/index.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';

const SUITE = 'taps';
const VARIANTS = ['stages, no tap', 'no stages', 'stages, no-op tap'];
const name = (v) => `request through a ring, 64 B: ${v}`;
const STATUSES = { success: 0, readOnly: 1, mediaError: 2, internal: 3 };

const check = (ok, what) => {
  if (!ok) throw new Error(`taps bench: ${what}`);
};

function path(group) {
  const core = loadCoreSync();
  const ring = VmbusRing.create(core, { dataSize: 64 * 1024 });
  const payload = new Uint8Array(64).fill(7);
  const dest = new Uint8Array(64);
  if (group === 'no stages') return () => check(ring.write(payload) !== 0 && ring.readInto(dest) === 64, 'lost a packet');
  const taps = new TapRegistry();
  const [decode, writeback] = taps.declare('dev0', [{ name: 'bench:io:decode' }, { name: 'bench:io:writeback' }]);
  if (group === 'stages, no-op tap') taps.attach('bench:io:*', () => {});
  const completion = { status: 0, cdw0: 0 };
  const event = { device: 'dev0', queue: 0, io: { kind: 'write', opcode: 1 }, command: payload, completion, data: null, statuses: STATUSES, request: '0', timeNs: 0n };
  return () => {
    if (decode.taps !== null) taps.run(decode, event);
    check(ring.write(payload) !== 0 && ring.readInto(dest) === 64, 'lost a packet');
    if (writeback.taps !== null) taps.run(writeback, event);
  };
}

function cases(group) {
  if (group !== 'wasm') throw new Error(`taps bench: unknown group ${group}`);
  return VARIANTS.map((v) => ({ suite: SUITE, name: name(v), engine: 'wasm', payloadBytes: 64, ops: 1, fn: path(v) }));
}

const key = (v) => ({ suite: SUITE, name: name(v), engine: 'wasm', payloadBytes: 64 });

export default {
  name: SUITE,
  keyFigures: [
    { label: 'a request with two tap-free stages / with none (target >= 0.98)', of: key('stages, no tap'), over: key('no stages') },
    { label: 'a request with a no-op tap on both stages / with none', of: key('stages, no-op tap'), over: key('no stages') },
  ],
  cases,
  async run(ctx) {
    return timeGroupsIsolated(import.meta.url, ['wasm'], ctx);
  },
};
