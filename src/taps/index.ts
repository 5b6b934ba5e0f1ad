// Taps, fault injectors and traces: what the device models plug into.
export { TapRegistry, type Tap, type TapHandle, type StagePoint, type StageSpec, type StageInfo, type TapCounters } from './registry';
export type { TapContext, TapEvent, TapOutcome, TapAction, TapCompletion, DeviceStatuses, IoKind } from './context';
export { seededRandom } from './random';
export { readOnlyAfter, temperamental, reincarnation } from './injectors/storage';
export { randomFailure, drop, delay, corrupt } from './injectors/generic';
export { vendorCommand } from './injectors/vendor';
