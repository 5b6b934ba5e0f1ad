// The listening socket of a network front end (Node): the iSCSI and NVMe/TCP targets bind it on
// an address (127.0.0.1 by default), hand each accepted socket to their own connection handling,
// and close every socket with it.

import { createServer, type Server, type Socket } from 'node:net';

export class TcpListener {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  /** `port` 0 picks a free one (read `port` after listen()); `accept` takes each socket (no delay set). */
  constructor(private readonly requestedPort: number, readonly host: string, private readonly accept: (s: Socket) => void) {}

  /** The port it listens on (after listen()). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : this.requestedPort;
  }

  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer((s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.setNoDelay(true);
      this.accept(s);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.requestedPort, this.host, () => resolve());
    });
  }

  /** Destroys every socket it accepted and stops listening. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
