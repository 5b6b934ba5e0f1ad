// storvsc: the VMBus SCSI device. The wire format first; the host (storvsp) and guest driver follow.
export * from './wire';
