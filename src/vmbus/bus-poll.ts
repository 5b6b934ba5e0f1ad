// The poll loop both bus ends share: control messages first (at most one queue's worth, so a
// flooding peer cannot keep us here, P4), then every open channel that has work. A channel that
// throws does not stop the others; a broken one stays broken and is not reported again.

import { SgringError } from '../engine/errors';
import type { ChannelEnd } from './channel-end';
import type { MessageEnd } from './transport';

export function pollBus(end: MessageEnd, flushOutbox: () => void, handle: (slot: Uint8Array) => void,
  channels: Iterable<ChannelEnd<unknown>>): number {
  flushOutbox();
  let n = 0;
  for (let i = 0; i < end.slots; i++) {
    const slot = end.receive();
    if (slot === null) break;
    handle(slot);
    n++;
  }
  flushOutbox();
  end.takeEvents(() => {});
  let first: unknown = null;
  for (const ch of channels) {
    if (ch.state !== 'open' || !ch.hasWork()) continue;
    try {
      n += ch.poll();
    } catch (e) {
      if (!(e instanceof SgringError && e.broken)) first ??= e;
    }
  }
  if (first !== null) throw first;
  return n;
}
