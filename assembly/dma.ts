// (being written: GuestMemory and Iommu DMA, issue 4)
