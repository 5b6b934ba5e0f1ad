// One packet as the object API returns it (readPacket, peekPacket, a ReadBatch's iterator).

export interface RingPacket {
  type: number;
  flags: number;
  transactionId: bigint;
  /** Bytes [hlen*8, tlen*8) of the packet, sender padding included, as the wire gives them. */
  payload: Uint8Array;
  /** True when the flow-control rule of spec §1.9.2 says the producer must be interrupted now. */
  signal: boolean;
}
