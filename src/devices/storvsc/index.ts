// storvsc: the VMBus SCSI device. The wire format, the host (storvsp) and the guest driver.
export * from './wire';
export { StorvspDevice, VSTOR_STATUS_INVALID_PARAMETER, VSTOR_STATUS_REVISION_MISMATCH, type StorvspOptions, type StorvspTarget } from './host';
export { StorvscDriver, type ScsiCommandOptions, type ScsiCommandResult, type StorvscDisk, type StorvscOptions } from './guest';
