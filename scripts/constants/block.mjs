// Block backends (src/devices/block/): the statuses a disk reports to the device in front of it,
// which turns each into its own protocol's status (NVMe, SCSI sense).

export const constants = {
  BLOCK_SIZE_DEFAULT: 512,
};

export const statuses = [
  { name: 'LbaOutOfRange', value: -80, breaks: false, message: 'the blocks lie (partly) beyond the end of the disk' },
  { name: 'ReadOnlyMedium', value: -81, breaks: false, message: 'the disk is read-only: writes and discards are refused' },
  { name: 'MediumError', value: -82, breaks: false, message: 'the backing store failed the read or write' },
];
