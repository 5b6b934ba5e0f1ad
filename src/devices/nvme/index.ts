// NVMe: the controller model (and, with its own issue, the host driver).
export { NvmeController, type NvmeControllerOptions } from './controller';
export { NVME_SC, NVME_TAP_STATUSES, statusSc, statusSct, statusDnr } from './status';
export { REG as NVME_REG } from './registers';
export { NvmeDriver, type NvmeDriverOptions, type NvmeCompletion, type NamespaceInfo, type NvmeRegisters } from './driver';
export { NvmeMmioChannel, NvmeRemote, serveNvme, serveNvmeAsync, type ServedController } from './remote';
