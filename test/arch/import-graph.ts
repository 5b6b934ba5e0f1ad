// The import graph of src/ as the TypeScript compiler resolves it (type-only imports included:
// a circle of types is still a circle of concepts), and the cycles in it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** file (relative to root) -> files it imports or re-exports from, within `dir`. */
export function importGraph(root: string, dir = 'src'): Map<string, string[]> {
  const options: ts.CompilerOptions = { moduleResolution: ts.ModuleResolutionKind.Bundler, module: ts.ModuleKind.ESNext, allowJs: false };
  const host = ts.createCompilerHost(options);
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(join(root, dir))) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps: string[] = [];
    for (const ref of info.importedFiles) {
      const r = ts.resolveModuleName(ref.fileName, file, options, host).resolvedModule;
      if (r && !r.isExternalLibraryImport) deps.push(relative(root, r.resolvedFileName));
    }
    graph.set(relative(root, file), [...new Set(deps)].filter((d) => d.startsWith(dir + '/')));
  }
  return graph;
}

/** The strongly connected components that hold a cycle, each as a sorted list of files (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}
