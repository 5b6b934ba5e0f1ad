// Fault injection and a Wireshark trace around a device's pipeline. A device model declares its
// stages once and hands each event to its taps (one null check per stage when none is attached);
// here a tiny NVMe-shaped disk stands in for one. readOnlyAfter(5) makes the sixth write fail
// as the frankendrive did; traceTap writes every command and completion as NVMe/TCP, which
// Wireshark and tshark decode as they are (the path is printed at the end).
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nvmeTcpEncoder, PcapngWriter, readOnlyAfter, TapRegistry, traceTap } from 'sgring';
import { FileSink } from 'sgring/node';

const STATUS = { success: 0, readOnly: 0x4182, mediaError: 0x0281, internal: 0x0006 }; // NVMe status fields

/** The device side: a 1 MiB disk of 512-byte blocks behind the stages nvme:io:decode and nvme:io:writeback. */
function tinyDisk(taps, name) {
  const disk = new Uint8Array(1 << 20);
  const [decode, writeback] = taps.declare(name, [{ name: 'nvme:io:decode' }, { name: 'nvme:io:writeback' }], { encoder: nvmeTcpEncoder });
  let now = 0n;
  return async function submit(opcode, cid, lba, blocks, data) {
    const sqe = new Uint8Array(64);
    const dv = new DataView(sqe.buffer);
    sqe[0] = opcode;
    dv.setUint16(2, cid, true);
    dv.setUint32(4, 1, true); // nsid
    dv.setUint32(40, lba, true);
    dv.setUint16(48, blocks - 1, true);
    const kind = opcode === 0x01 ? 'write' : 'read';
    const completion = { status: 0, cdw0: 0 };
    const event = (d) => ({ device: name, queue: 1, io: { kind, opcode }, command: sqe, completion, data: d, statuses: STATUS,
      request: `1:${cid}`, timeNs: (now += 20_000n), detail: { transferBytes: blocks * 512 } });
    let handled = false;
    if (decode.taps !== null) { // the one branch a stage costs
      const o = taps.run(decode, event(kind === 'write' ? [data] : null));
      if (o.error) throw o.error;
      if (o.wait) await o.wait;
      handled = o.action === 'complete';
    }
    let out = null;
    if (!handled && kind === 'write') disk.set(data, lba * 512);
    if (!handled && kind === 'read') out = disk.slice(lba * 512, (lba + blocks) * 512);
    if (writeback.taps !== null) taps.run(writeback, event(out ? [out] : null));
    return completion.status;
  };
}

const taps = new TapRegistry();
const submit = tinyDisk(taps, 'nvme0');
const file = join(tmpdir(), 'nvme-trace.pcapng');
const writer = new PcapngWriter(new FileSink(file));
taps.attach('nvme:io:decode', readOnlyAfter(5));
taps.attach('*:*:*', traceTap(writer));                 // after the injectors, or anywhere: it records the final state

const statuses = [];
for (let i = 0; i < 8; i++) statuses.push(await submit(0x01, i, i * 8, 8, new Uint8Array(4096).fill(i)));
statuses.push(await submit(0x02, 8, 0, 8));
writer.close();
assert.deepEqual(statuses, [0, 0, 0, 0, 0, 0x4182, 0x4182, 0x4182, 0]);
console.log(`writes 6-8 failed read-only (SCT 1, SC 0x82); ${writer.packets} frames: tshark -r ${file}`);
