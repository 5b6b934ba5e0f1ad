// Export surface of the Wasm engine. Every export takes and returns only i32/u32: no managed
// types cross the boundary, and nothing here allocates (DESIGN "The engine boundary").
export { ringInit, ringClearError, ringWrite, ringWritev, ringWriteBatch, ringRead, ringReadBatch } from './ring';
export { copyLimit } from './mem';
