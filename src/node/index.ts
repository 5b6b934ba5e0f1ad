// sgring/node: what only Node can do (files, sockets). Everything else is in the main entry.
export { FileSink } from './file-sink';
export { FileDisk, type FileDiskOptions } from './file-disk';
export { IscsiTarget, type IscsiTargetOptions } from '../devices/iscsi/target';
export { UdpUplink, type UdpUplinkOptions } from './udp-uplink';
export { NvmeTcpTarget, DISCOVERY_NQN, type NvmeTcpTargetOptions, type NvmeTcpCounters } from '../devices/nvme/tcp/target';
