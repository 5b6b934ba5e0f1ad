// netvsc: the VMBus network device. The wire format (NVSP, RNDIS), the host (netvsp), the guest
// driver and the virtual switch their ports plug into.
export * from './wire';
export { NetvspDevice, parseMac, type NetvspOptions } from './host';
export { NetvscDriver, type NetvscOptions } from './guest';
export { VirtualSwitch, type PortCounters, type PortReceiver, type SwitchPort, type Uplink, type VirtualSwitchOptions } from './switch';
