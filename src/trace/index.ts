// Traces that unmodified Wireshark and tshark decode: a pcapng writer, its sinks, the device encoders and the trace tap.
export { PcapngWriter, MemorySink, BlobSink, LINKTYPE_ETHERNET, readPcapng, type TraceSink, type TraceBlob, type InterfaceOptions, type PcapngInterface, type PcapngPacket } from './pcapng';
export { TcpFlow, TCP_MAX_PAYLOAD, type FlowEnds } from './tcp';
export { nvmeTcpEncoder, NVME_TCP_PORT } from './nvme-tcp';
export { iscsiEncoder, ISCSI_PORT } from './iscsi';
export { ethernetEncoder } from './ethernet';
export { traceTap, type TraceTapStats } from './trace-tap';
export type { TraceEncoder, TraceRecord } from './encoder';
export { summarizeTrace, type DeviceTrace, type CommandStats } from './summary';
