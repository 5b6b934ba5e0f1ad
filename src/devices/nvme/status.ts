// NVMe status fields (spec/nvme.md §5) as the controller puts them in a CQE: SC | SCT << 8 | DNR << 14.

const field = (sct: number, sc: number, dnr = false) => sc | (sct << 8) | (dnr ? 0x4000 : 0);

export const NVME_SC = {
  success: 0,
  invalidOpcode: field(0, 0x01, true),
  invalidField: field(0, 0x02, true),
  commandIdConflict: field(0, 0x03, true),
  dataTransferError: field(0, 0x04),
  internalError: field(0, 0x06),
  abortedByRequest: field(0, 0x07),
  abortedSqDeletion: field(0, 0x08),
  invalidNamespace: field(0, 0x0b, true),
  commandSequenceError: field(0, 0x0c, true),
  namespaceWriteProtected: field(0, 0x20, true),
  lbaOutOfRange: field(0, 0x80, true),
  // command specific
  completionQueueInvalid: field(1, 0x00, true),
  invalidQueueId: field(1, 0x01, true),
  invalidQueueSize: field(1, 0x02, true),
  abortLimitExceeded: field(1, 0x03, true),
  aerLimitExceeded: field(1, 0x05, true),
  invalidInterruptVector: field(1, 0x08, true),
  invalidLogPage: field(1, 0x09, true),
  invalidQueueDeletion: field(1, 0x0c, true),
  featureNotSaveable: field(1, 0x0d, true),
  writeToReadOnlyRange: field(1, 0x82, true),
  // fabrics (command specific, NVMe-oF 1.1 §3.3)
  incompatibleFormat: field(1, 0x80, true),
  controllerBusy: field(1, 0x81, true),
  connectInvalidParameters: field(1, 0x82, true),
  connectInvalidHost: field(1, 0x84, true),
  dataSglLengthInvalid: field(0, 0x0f, true),
  sglDescriptorTypeInvalid: field(0, 0x11, true),
  transientTransportError: field(0, 0x22),
  // media
  writeFault: field(2, 0x80),
  unrecoveredReadError: field(2, 0x81),
  compareFailure: field(2, 0x85, true),
} as const;

/** The statuses the taps' injectors name, in NVMe terms (frankendrive's read-only is SCT 1 / SC 0x82). */
export const NVME_TAP_STATUSES = {
  success: NVME_SC.success,
  readOnly: NVME_SC.writeToReadOnlyRange,
  mediaError: NVME_SC.unrecoveredReadError,
  internal: NVME_SC.internalError,
};

export const statusSct = (s: number) => (s >> 8) & 7;
export const statusSc = (s: number) => s & 0xff;
export const statusDnr = (s: number) => (s & 0x4000) !== 0;
