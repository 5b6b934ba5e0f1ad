// Block backends: the disks behind the storage devices.
export { checkGeometry, type BlockBackend, type DiskGeometry, type Lba } from './backend';
export { CopyBatch } from './copy-batch';
export { MemoryDisk, type MemoryDiskOptions } from './memory-disk';
export { OpfsDisk, type OpfsDiskOptions } from './opfs-disk';
