// One packet as the object API returns it (readPacket, peekPacket, a ReadBatch's iterator).

export interface RingPacket {
  type: number;
  flags: number;
  transactionId: bigint;
  /**
   * Bytes [hlen*8, tlen*8) of the packet as the wire gives them: padded with zeros to a multiple
   * of 8, because the sender's own length is not on the wire. Take `payload.subarray(0, n)` when
   * the protocol says n; frame plain messages with frameMessage / unframeMessage.
   */
  payload: Uint8Array;
  /** True when the flow-control rule of spec §1.9.2 says the producer must be interrupted now. */
  signal: boolean;
}
