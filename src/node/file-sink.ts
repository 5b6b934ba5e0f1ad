// A trace sink that writes to a file as the trace goes (Node only: the subpath sgring/node, so
// that the main entry stays free of Node modules and runs unchanged in a browser).

import { closeSync, openSync, writeSync } from 'node:fs';
import type { TraceSink } from '../trace/pcapng';

/** Writes each block to `path` at once (created or truncated): memory stays flat however long the trace. */
export class FileSink implements TraceSink {
  private fd: number | null;
  /** Bytes written so far. */
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  write(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`FileSink ${this.path} is closed`);
    for (let at = 0; at < bytes.length;) at += writeSync(this.fd, bytes, at, bytes.length - at);
    this.bytes += bytes.length;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
