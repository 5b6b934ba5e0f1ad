// The SCSI disk target shared by storvsp and the iSCSI front end.
export { ScsiDisk, reportLuns, type ScsiDiskOptions, type ScsiRequest, type ScsiResult } from './disk';
export { SCSI_STATUS, SENSE, SENSE_KEY, fixedSense, type Sense } from './sense';
