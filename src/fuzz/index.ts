// sgring/fuzz: the bounce-policy fuzzer, a subpath of its own so that the main entry never loads
// fast-check (1.9 MB with pure-rand). The policies themselves are in the main entry too.
export { bouncePolicies, freebsdSgBounce, linuxLegacyBounce, type BouncePolicy } from './policies';
export { findCounterexample, formatCounterexample, type Counterexample, type FuzzOptions } from './counterexample';
