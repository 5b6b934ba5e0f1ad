// The KVP integration service over two real rings: the host negotiates, sets a value in the
// guest's pool and enumerates another pool.
import assert from 'node:assert/strict';
import { constants as K, createRingPipePair, KvpGuest, KvpHost, KvpStore, loadCoreSync, settleIc } from 'sgring';

const core = loadCoreSync();
const { host: hp, guest: gp } = createRingPipePair(core);            // two real VmbusRings
const host = new KvpHost(hp);
const guest = new KvpGuest(gp, { store: new KvpStore({ [K.KVP_POOL_AUTO]: { OSName: 'Linux' } }) });
const run = (p) => settleIc(p, [host, guest]);                       // polls both ends until settled

await run(host.negotiate());                                         // framework 3.0, KVP 4.0
await run(host.set(K.KVP_POOL_EXTERNAL, 'Role', 'web'));
assert.equal(guest.store.get(K.KVP_POOL_EXTERNAL, 'Role'), 'web');
const all = await run(host.enumerateAll(K.KVP_POOL_AUTO));           // [{ key: 'OSName', value: { type: 'string', value: 'Linux' } }]
assert.deepEqual(all, [{ key: 'OSName', value: { type: 'string', value: 'Linux' } }]);
console.log('KVP: set Role=web, enumerated OSName=Linux');
