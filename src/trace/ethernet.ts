// Network devices trace the frames themselves: every data segment of an event is one
// Ethernet frame, written as it crossed the stage. Control stages (`*:ctl:*`, such as netvsp's
// RNDIS control messages) carry no frames and are not written.

import { LINKTYPE_ETHERNET } from './pcapng';
import type { TraceEncoder, TraceRecord } from './encoder';

export const ethernetEncoder: TraceEncoder = {
  protocol: 'Ethernet',
  linktype: LINKTYPE_ETHERNET,
  createState: () => null,
  encode: (r: TraceRecord) => (r.stage.includes(':ctl:') ? [] : (r.data ?? []).filter((f) => f.length >= 14).map((f) => f.slice())),
};
