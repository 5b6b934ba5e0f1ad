// A VMBus guest and host in one thread: offers, a channel opened on a ring GPADL, a request and
// its completion both ways, and a close that gives the ring pages back.
import assert from 'node:assert/strict';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, pageAllocator } from 'sgring';

const core = loadCoreSync({ guestBytes: 4 << 20 });
const transport = MessageTransport.create(core);           // message queues, doorbells, event bits
const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
const host = new HostBus(transport, { dma });
host.offer({ classId: 'storage', onOpen: (ch) => { ch.onPacket = (p) => ch.complete(p, p.payload()); } });

const pages = pageAllocator(core);                         // guest pages for rings, given back on close
const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
await guest.connect();                                     // INITIATE_CONTACT … ALLOFFERS_DELIVERED
const ch = await guest.open(guest.offers.all()[0]);        // ring GPADL + OPENCHANNEL
const seen = [];
ch.onCompletion = (ctx, err, pkt) => seen.push([ctx, err?.code ?? pkt.payload()[0]]);
ch.request(Uint8Array.of(7), 'req-7');                     // signals the host only if TX was empty
host.poll(); ch.poll();                                    // -> [['req-7', 7]]
assert.deepEqual(seen, [['req-7', 7]]);
const reply = await ch.call(Uint8Array.of(9));             // promise form, with a deadline
assert.equal(reply[0], 9);
assert.equal(pages.stats().usedPages, 32);                 // two 16-page rings
await ch.close();                                          // CLOSECHANNEL + GPADL teardown
assert.equal(pages.stats().usedPages, 0);
console.log('request and call completed; channel closed, ring pages returned');
