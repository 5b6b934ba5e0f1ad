// An NVMe/TCP target in front of an NvmeController: any NVMe/TCP host (Linux's nvme-tcp, SPDK,
// nvme-cli) can connect to it on 127.0.0.1. Here a few lines of Node stand in for the host: the
// ICReq/ICResp exchange, then a Fabrics Connect the target answers with its controller id.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, pageAllocator } from 'sgring';
import { NvmeTcpTarget } from 'sgring/node';

const core = loadCoreSync({ guestBytes: 16 << 20 });             // the target's queues and data staging
const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
const controller = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 8192 }) }] });
const target = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), subnqn: 'nqn.2026-12.io.sgring:example', port: 0 });
await target.listen();                                           // port 0: a free one; default 4420

const socket = connect(target.port, '127.0.0.1');
const pdus = [];
let held = Buffer.alloc(0);
socket.on('data', (d) => {
  held = Buffer.concat([held, d]);
  while (held.length >= 8 && held.length >= held.readUInt32LE(4)) {
    pdus.push(held.subarray(0, held.readUInt32LE(4)));
    held = held.subarray(held.readUInt32LE(4));
  }
});
const next = async () => {
  while (pdus.length === 0) await new Promise((r) => setTimeout(r, 5));
  return pdus.shift();
};

const icReq = Buffer.alloc(128);                                 // type 0, HLEN 128, PLEN 128, PFV 0, no digests
icReq.set([0x00, 0, 128, 0]);
icReq.writeUInt32LE(128, 4);
socket.write(icReq);
const icResp = await next();
assert.equal(icResp[0], 0x01);
console.log(`ICResp: MAXH2CDATA ${icResp.readUInt32LE(12)} bytes`);

const capsule = Buffer.alloc(72 + 1024);                         // CapsuleCmd with the Connect data in-capsule
capsule.set([0x04, 0, 72, 72]);
capsule.writeUInt32LE(capsule.length, 4);
capsule.set([0x7f, 0x40, 1, 0, 0x01], 8);                        // Fabrics, SGL, CID 1, FCTYPE Connect
capsule.writeUInt32LE(1024, 8 + 32);                             // SGL1: 1024 bytes of data block, offset form
capsule[8 + 39] = 0x01;
capsule.writeUInt16LE(31, 8 + 44);                               // admin queue, 32 entries
capsule.writeUInt16LE(0xffff, 72 + 16);                          // any controller id
capsule.write('nqn.2026-12.io.sgring:example', 72 + 256);
capsule.write('nqn.2026-12.io.sgring:example-host', 72 + 512);
socket.write(capsule);
const resp = await next();
assert.equal(resp[0], 0x05);                                     // CapsuleResp
assert.equal(resp.readUInt16LE(8 + 14) >> 1, 0);                 // success
console.log(`connected: controller id ${resp.readUInt16LE(8)}, associations ${target.counters.associations}`);

socket.destroy();
await target.close();
