// Shared by the VMBus worker fixtures (plain JS over dist/: workers cannot load TS).
import { IommuDomain } from '../../../dist/index.mjs';

/** The host's view of guest RAM: an identity IOMMU domain. */
export const identityDma = (core) => IommuDomain.create(core, 'vmbus-host', { mode: 'identity' });

export function describeError(e) {
  return e && typeof e === 'object'
    ? { name: e.name, message: e.message, code: e.code, broken: e.broken, stack: e.stack }
    : { name: typeof e, message: String(e) };
}
