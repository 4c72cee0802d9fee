import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FixtureReply, FixtureRequest, FixtureStats } from './protocol.js';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface StartOptions {
  env?: Record<string, string>;
  /** Extra Node flags (`--cpu-prof`, …); `--expose-gc` is always given. */
  execArgv?: string[];
  timeoutMs?: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A fixture server in its own process (so that the load generator in this process never shares
 * its event loop), in production mode, talking to the runner over the fork IPC channel.
 */
export class FixtureProcess {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private output = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly info: Record<string, unknown> & { port: number },
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (raw) => {
      const message = raw as FixtureReply;
      if (message.type !== 'reply') return;
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.error) waiter.reject(new Error(`${name}: ${message.error}`));
      else waiter.resolve(message.result ?? {});
    });
  }

  static start(name: string, script: URL, options: StartOptions = {}): Promise<FixtureProcess> {
    const child = fork(fileURLToPath(script), [], {
      env: { ...process.env, ...options.env, NODE_ENV: 'production', NO_COLOR: '1' },
      execArgv: ['--expose-gc', ...(options.execArgv ?? [])],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    running.add(child);
    child.once('exit', () => running.delete(child));
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8192);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(`${name} did not start within ${options.timeoutMs ?? 60000} ms\n${output}`),
        );
      }, options.timeoutMs ?? 60000);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with code ${code} during start-up\n${output}`));
      };
      child.once('exit', onExit);
      child.on('message', function onMessage(raw) {
        const message = raw as FixtureReply;
        if (message.type === 'fatal') {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          reject(new Error(`${name} failed to start:\n${message.message}`));
        } else if (message.type === 'ready') {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          const fixture = new FixtureProcess(
            name,
            child,
            message.info as Record<string, unknown> & { port: number },
          );
          fixture.output = output;
          child.stdout!.off('data', keep);
          child.stderr!.off('data', keep);
          const keepLater = (chunk: Buffer) => {
            fixture.output = (fixture.output + chunk.toString('utf8')).slice(-8192);
          };
          child.stdout!.on('data', keepLater);
          child.stderr!.on('data', keepLater);
          resolve(fixture);
        }
      });
    });
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.info.port}${path}`;
  }

  /** The fixture's recent stdout/stderr (for error messages). */
  get recentOutput(): string {
    return this.output;
  }

  private request(body: DistributiveOmit<FixtureRequest, 'id'>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...body, id } as FixtureRequest, (error) => {
        if (error) {
          this.waiting.delete(id);
          reject(error);
        }
      });
    });
  }

  /** Memory (after two full GCs when `gc`), event-loop delay and the fixture's own figures. */
  async stats(options: { gc?: boolean; resetDelay?: boolean } = {}): Promise<FixtureStats> {
    return (await this.request({ cmd: 'stats', ...options })) as unknown as FixtureStats;
  }

  /** The fixture's monotonic clock in µs (the clock of its CPU profile's timestamps). */
  async mark(): Promise<number> {
    return (await this.request({ cmd: 'mark' })).monotonicUs as number;
  }

  /** Closes the app and waits for the process to exit (which writes a --cpu-prof profile). */
  async stop(timeoutMs = 15000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.send({ id: 0, cmd: 'stop' } satisfies FixtureRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
