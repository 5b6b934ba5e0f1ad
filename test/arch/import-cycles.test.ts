// No import circles in src/: each pair of modules has one direction (the engine contract belongs
// to the engine, the reference twin implements it; batches do not know the ring; a host channel
// does not know its bus). Type-only imports count: a circle of types is a circle of concepts.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cycles, importGraph } from './import-graph';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the import graph of src/', () => {
  it('has no cycles', () => {
    const graph = importGraph(root);
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/index.ts')!.length).toBeGreaterThan(10);
    expect(cycles(graph)).toEqual([]);
  });

  it('the cycle finder finds a two-file circle and a longer one', () => {
    const g = new Map([['a', ['b']], ['b', ['a', 'c']], ['c', ['d']], ['d', ['e']], ['e', ['c']], ['f', ['f']]]);
    expect(cycles(g).sort((x, y) => x[0]!.localeCompare(y[0]!))).toEqual([['a', 'b'], ['c', 'd', 'e'], ['f']]);
  });
});
