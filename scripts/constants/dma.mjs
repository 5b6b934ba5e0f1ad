// IOMMU domains and DMA (DESIGN "Memory model"): the domain image a host lays out in core
// memory, the result block every DMA function fills, and status codes -50 .. -59.

export const constants = {
  // Domain image: header, then (strict mode) a permission table of 2 bits per 4 KiB guest page,
  // 16 pages per u32 word, page pg at bits 2*(pg % 16) (read) and 2*(pg % 16) + 1 (write).
  DOM_MAGIC: 0,
  DOM_MODE: 4,
  // Even while usable, odd while a reset runs (seqlock): a DMA carries the generation its
  // request began under and fails DmaStale unless it still matches.
  DOM_GENERATION: 8,
  DOM_PAGES: 12, // pages the table covers; pages at or past it are unmapped
  DOM_WINDOW_COUNT: 16,
  // Device windows: GPA ranges that are the device's own registers, doorbells or CMB
  // (hardening P5, Q1): never DMA-able in any mode. { start u64, len u64 } each.
  DOM_WINDOWS: 32,
  DOM_WINDOW_SIZE: 16,
  DOM_MAX_WINDOWS: 4,
  DOM_HEADER_SIZE: 96,
  DOM_MAGIC_VALUE: 0x554d4d49, // "IMMU"
  DOM_MODE_IDENTITY: 0,
  DOM_MODE_STRICT: 1,
  DOM_PAGE_SHIFT: 12,
  DOM_PAGES_PER_WORD: 16,

  // Access bits: what a DMA needs, and what a page grants.
  DMA_READ: 1, // the device reads guest memory (gather)
  DMA_WRITE: 2, // the device writes guest memory (scatter)

  // Result block (16 bytes, 4-aligned). On error: INDEX = offending segment, ADDR = the
  // guest-physical address of the first offending byte, DETAIL = the page's permission bits
  // (IommuFault), the window slot (DmaDeviceWindow), the domain's generation (DmaStale) or the
  // bytes the list holds (DmaOverrun). All zero on success.
  DMA_RES_INDEX: 0,
  DMA_RES_ADDR_LO: 4,
  DMA_RES_ADDR_HI: 8,
  DMA_RES_DETAIL: 12,
  DMA_RES_SIZE: 16,
};

export const statuses = [
  { name: 'IommuFault', value: -50, breaks: false, message: 'the DMA touches a page the domain does not map for that access' },
  { name: 'DmaStale', value: -51, breaks: false, message: 'the domain was reset after this request began: its DMA is dropped' },
  { name: 'DmaDeviceWindow', value: -52, breaks: false, message: "the DMA touches the device's own register, doorbell or CMB window" },
  { name: 'DmaReentrant', value: -53, breaks: false, message: 'map, unmap, reset or a visit was called on a domain from inside its own DMA callback' },
  { name: 'InvalidDomain', value: -54, breaks: false, message: 'the domain image is not a valid IOMMU domain, or overlaps guest RAM or the DMA buffers' },
  { name: 'DmaOverrun', value: -55, breaks: false, message: 'the transfer is longer than the bytes the segment list describes' },
];
