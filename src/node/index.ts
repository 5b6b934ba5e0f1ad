// sgring/node: what only Node can do (files). Everything else is in the main entry.
export { FileSink } from './file-sink';
export { FileDisk, type FileDiskOptions } from './file-disk';
export { IscsiTarget, type IscsiTargetOptions } from '../devices/iscsi/target';
