import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A TCP port nobody listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A redis-server of the test's own, on a free port, that the test may kill and restart
 * (the shared server on 6379 is never touched). Nothing is persisted.
 */
export class PrivateRedisServer {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Starts a server on a free port and waits until it answers PING. */
  static async start(): Promise<PrivateRedisServer> {
    const server = new PrivateRedisServer(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** (Re)starts the server on the same port and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) =>
        reject(new Error(`Cannot run redis-server (is it on the PATH?): ${error.message}`)),
      );
      child.once('exit', (code) =>
        reject(new Error(`redis-server on port ${this.port} exited with code ${code}`)),
      );
    });
    failed.catch(() => undefined);
    try {
      await Promise.race([this.waitForPing(), failed]);
    } catch (error) {
      this.child = undefined;
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Kills the server at once (SIGKILL), as a crash or a lost host would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  private async waitForPing(): Promise<void> {
    const deadline = Date.now() + 10_000;
    // Probe the port with a bare socket first: an ioredis client refused a connection keeps a
    // timer alive after disconnect(), which holds Jest open.
    while (!(await accepts(this.port))) {
      if (Date.now() > deadline) {
        throw new Error(`redis-server on port ${this.port} does not accept connections`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const client = new Redis(this.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      const pong = await client.ping();
      if (pong !== 'PONG') throw new Error(`redis-server on port ${this.port} answered ${pong}`);
    } finally {
      client.disconnect();
    }
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
