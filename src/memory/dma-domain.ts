// The contract between device models and guest memory (DESIGN "Memory model"): a device never
// touches guest RAM directly; it asks its DMA domain, which translates and permission-checks
// every page. An access outside what the domain maps is a typed error on that request, never
// an out-of-bounds access. Iommu domains (identity or strict) implement this interface.

export type DmaAccess = 'read' | 'write';

/**
 * A device's access to guest RAM. Every failure is reported in one order, whatever else is also
 * wrong with the request: first the arguments (a gpa or length that is not a non-negative integer,
 * a length of 2 GiB or more, an unknown access, a destination buffer shorter than the transfer:
 * InvalidArgument or BufferTooSmall), then the bounds (OutsideGuestRam, DmaDeviceWindow), then the
 * permissions (IommuFault, DmaStale). A caller's bug is named before the guest's.
 */
export interface DmaDomain {
  /**
   * Core-memory offset of guest-physical [gpa, gpa+len) for zero-copy access, after checking that
   * every page of it is mapped for `access` and that it is contiguous in core memory. Throws
   * SgringError otherwise: IommuFault, OutsideGuestRam, DmaDeviceWindow, DmaStale, DmaOverrun,
   * DmaReentrant or InvalidArgument.
   */
  translate(gpa: number, len: number, access: DmaAccess): number;
  /** Copies guest [gpa, gpa+len) out (into `dest` when given). Checks every page before copying. */
  read(gpa: number, len: number, dest?: Uint8Array): Uint8Array;
  /** Copies `data` into guest memory at gpa. Checks every page first: nothing partial is written. */
  write(gpa: number, data: Uint8Array): void;
}

/**
 * translate() by the quickest route a domain has (a device's per-request path): an IommuDomain's
 * translateSmall, answered from its permission table without an engine call, else translate().
 */
export function translateQuick(dma: DmaDomain, gpa: number, len: number, access: DmaAccess): number {
  const quick = (dma as { translateSmall?: DmaDomain['translate'] }).translateSmall;
  return quick !== undefined ? quick.call(dma, gpa, len, access) : dma.translate(gpa, len, access);
}
