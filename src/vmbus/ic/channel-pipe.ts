// ChannelPipe: runs an IC service over an open VMBus channel. The channel delivers packets by
// callback; the IC ends pull them, so in-band packets are queued here (each a private copy) and
// other packet kinds, which no IC peer sends, are counted and skipped.

import { PKT_TYPE_INBAND } from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import type { ChannelEnd } from '../channel-end';
import type { IcPipe, IcPipeMessage } from './pipe';

/** Most packets taken from the channel per receive() when the queue is empty. */
const POLL_BUDGET = 16;

export class ChannelPipe implements IcPipe {
  private readonly queue: IcPipeMessage[] = [];
  /** Packets that were not in-band, counted and dropped. */
  skipped = 0;

  constructor(private readonly channel: ChannelEnd<unknown>) {
    channel.onPacket = (p) => {
      if (p.type === PKT_TYPE_INBAND) this.queue.push({ payload: p.copy(), transactionId: p.transactionId, flags: p.flags });
      else this.skipped++;
    };
  }

  send(payload: Uint8Array, transactionId: bigint, flags = 0): boolean {
    if (flags !== 0) throw new SgringError('InvalidArgument', 'IC messages travel as plain in-band packets (flags 0)');
    return this.channel.send(payload, transactionId);
  }

  receive(): IcPipeMessage | null {
    if (this.queue.length === 0) this.channel.poll(POLL_BUDGET);
    return this.queue.shift() ?? null;
  }
}
