// A vendor-specific admin command the device does not implement, answered by a tap (the talk's
// "sum" command, spec/nvme.md §7.4 item 5): attach it to an admin decode stage; for commands
// with `opcode` it completes with success and the dword 0 `handler` computes from the command
// dwords (cdw[0..15] of the 64-byte SQE). Use 0xC0-0xFF: lower admin opcodes are the spec's.

import { SgringError } from '../../engine/errors';
import type { Tap } from '../registry';
import { named } from './storage';

export function vendorCommand(opcode: number, handler: (cdw: Uint32Array) => number): Tap {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xff) throw new SgringError('InvalidArgument', `vendorCommand: opcode ${opcode} is not a byte`);
  if (typeof handler !== 'function') throw new SgringError('InvalidArgument', 'vendorCommand: the handler must be a function of the command dwords');
  return named(`vendorCommand(0x${opcode.toString(16)})`, (ctx) => {
    const cmd = ctx.command;
    if (cmd === null || cmd.length < 64 || cmd[0] !== opcode) return;
    const dv = new DataView(cmd.buffer, cmd.byteOffset, 64);
    const cdw = Uint32Array.from({ length: 16 }, (_, i) => dv.getUint32(4 * i, true));
    const v = handler(cdw);
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new SgringError('InvalidArgument', `vendorCommand(0x${opcode.toString(16)}): the handler returned ${v}, not a dword`);
    ctx.completion.cdw0 = v >>> 0;
    ctx.complete(ctx.statuses.success);
  });
}
