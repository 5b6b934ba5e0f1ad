// Shared by the VMBus worker fixtures (plain JS over dist/: workers cannot load TS).
import { SgringError } from '../../../dist/index.mjs';

/** The identity DmaDomain of test/vmbus/helpers.ts, for the host worker. */
export function identityDma(core) {
  const dom = {
    translate(gpa, len) {
      if (!(Number.isSafeInteger(gpa) && gpa >= 0 && len >= 0 && len <= core.guestBytes && gpa <= core.guestBytes - len)) {
        throw new SgringError('OutsideGuestRam', `DMA [${gpa}, +${len}) is outside guest RAM`);
      }
      return core.guestBase + gpa;
    },
    read(gpa, len, dest) {
      const at = dom.translate(gpa, len);
      const out = dest ?? new Uint8Array(len);
      out.set(core.u8.subarray(at, at + len));
      return out;
    },
    write(gpa, data) {
      core.u8.set(data, dom.translate(gpa, data.length));
    },
  };
  return dom;
}

export function describeError(e) {
  return e && typeof e === 'object'
    ? { name: e.name, message: e.message, code: e.code, broken: e.broken, stack: e.stack }
    : { name: typeof e, message: String(e) };
}
