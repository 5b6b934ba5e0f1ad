// Export surface of the Wasm engine. Every export takes and returns only i32/u32 (64-bit values
// stay in memory or cross as lo/hi pairs): no managed types cross the boundary, and nothing
// here allocates (DESIGN "The engine boundary").
export { ringInit, ringClearError, ringWrite, ringWritev, ringWriteRaw, ringWriteBatch, ringRead, ringReadBatch } from './ring';
export * from './bounce';
export * from './pagelist';
export * from './prp';
export * from './sgl';
export * from './dma';
export { copyLimit } from './mem';
