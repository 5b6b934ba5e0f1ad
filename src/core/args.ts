// Argument checks for the façades: what crosses the engine boundary must be an integer the
// boundary carries without loss. A NaN, a fraction, a negative number or one of 2^32 and more
// would be silently converted by WebAssembly (NaN -> 0, 8192.5 -> 8192) and refused or kept by
// the reference engine: both engines must see the same, already-valid numbers.

import { PKT_FLAG_COMPLETION_REQUESTED, PKT_TYPE_COMPLETION, PKT_TYPE_GPA, PKT_TYPE_INBAND, PKT_TYPE_RXBUF } from '../generated/constants';
import { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { checkOptionNames, describe } from '../engine/describe';

export { describe };

/** True for an integer in [0, 2^32). */
export function isU32(v: unknown): v is number {
  return typeof v === 'number' && v >>> 0 === v;
}

/** Throws InvalidArgument naming `name` unless v is an integer in [0, 2^32). */
export function u32Arg(v: unknown, name: string, where: string): number {
  if (!isU32(v)) throw new SgringError('InvalidArgument', `${where}: ${name} ${describe(v)} must be an integer in [0, 2^32)`, { argument: name });
  return v;
}

/** Throws InvalidArgument unless `payload` is a Uint8Array. */
export function bytesArg(v: unknown, name: string, where: string): Uint8Array {
  if (!(v instanceof Uint8Array)) {
    throw new SgringError('InvalidArgument', `${where}: ${name} must be a Uint8Array (got ${describe(v)}); ` +
      'encode strings with TextEncoder and arrays with Uint8Array.from', { argument: name });
  }
  return v;
}

/** Packet types a VMBus ring carries both ways (spec §1.4): what the reader accepts, the writer accepts. */
export const PACKET_TYPES = [PKT_TYPE_INBAND, PKT_TYPE_RXBUF, PKT_TYPE_GPA, PKT_TYPE_COMPLETION];

/**
 * Why the engine refused a write's header arguments, named (the error path only). Flags: only
 * completion-requested (1), because the reader refuses any other bit ([H12]).
 */
export function explainHeader(type: unknown, flags: unknown, tidLo: unknown, tidHi: unknown, where: string): SgringError | null {
  if (!isU32(type) || !PACKET_TYPES.includes(type)) {
    return new SgringError('InvalidArgument', `${where}: type ${describe(type)} is not a packet type (valid: 6 in-band, 7 transfer pages, 9 GPA direct, 11 completion)`, { argument: 'type' });
  }
  if (!isU32(flags) || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0) {
    return new SgringError('InvalidArgument', `${where}: flags ${describe(flags)}: only 0 and 1 (completion requested) are valid; a reader refuses any other bit`, { argument: 'flags' });
  }
  if (!isU32(tidLo)) return new SgringError('InvalidArgument', `${where}: tidLo ${describe(tidLo)} must be an integer in [0, 2^32)`, { argument: 'tidLo' });
  if (!isU32(tidHi)) return new SgringError('InvalidArgument', `${where}: tidHi ${describe(tidHi)} must be an integer in [0, 2^32)`, { argument: 'tidHi' });
  return null;
}

/** Throws InvalidArgument unless `core` is a Core (from loadCore or loadCoreSync). */
export function coreArg(core: unknown, where: string): Core {
  if (!(core instanceof Core)) throw new SgringError('InvalidArgument', `${where}: the first argument must be a Core from loadCore() or loadCoreSync() (got ${describe(core)})`);
  return core;
}

/** Throws InvalidArgument for option names `where` does not take. */
export function optionNames(opts: unknown, known: readonly string[], where: string): void {
  checkOptionNames(opts, known, where, (m) => new SgringError('InvalidArgument', m));
}
