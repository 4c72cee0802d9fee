/**
 * The built sample app (dist/sample-app/src/main.js) as a child process in production mode, on
 * a database of the bench's choosing, as an operator would run it: configured by environment
 * variables only. bench/fixtures/sample-app-host.ts imports its entry point and adds the IPC
 * commands of the bench fixtures (memory, profile marks, a clean exit for `--cpu-prof`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateJwk, writeJwks } from './keys.js';
import type { FixtureReply, FixtureRequest } from './protocol.js';

const HOST = new URL('../fixtures/sample-app-host.js', import.meta.url);
const SAMPLE_MAIN = new URL('../../sample-app/src/main.js', import.meta.url);

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface Credentials {
  username: string;
  password: string;
  secretKey: string;
}

export interface SampleAppOptions {
  /** The app's DATABASE_URL. */
  databaseUrl: string;
  /** Where its key file and data folder go. */
  dir: string;
  /** Extra Node flags (`--cpu-prof`, …); `--expose-gc` is always given. */
  execArgv?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Resident set size of a process (VmRSS of /proc/<pid>/status, Linux), bytes; NaN elsewhere. */
export function residentBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return kib ? Number(kib[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The last `bytes` of a file ('' if it cannot be read). */
function tail(file: string, bytes: number): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(bytes, size);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** CPU time of a process's threads, seconds, by role. */
export interface ThreadCpu {
  /** The main thread: the event loop. */
  eventLoop: number;
  /** Threads running at a lower priority (nice > 0): the password hasher's. */
  niced: number;
  /** Every other thread (V8's GC and compiler threads, libuv's pool, …). */
  other: number;
}

const CLOCK_TICKS = 100;

/**
 * CPU time used so far by each thread of `pid` (utime + stime of /proc/<pid>/task/<tid>/stat,
 * Linux), grouped by role; zeros elsewhere. Take two readings and subtract for a window.
 */
export function threadCpu(pid: number): ThreadCpu {
  const cpu: ThreadCpu = { eventLoop: 0, niced: 0, other: 0 };
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return cpu;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after "(comm)": state is field 3, utime 14, stime 15, nice 19 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    if (tid === String(pid)) cpu.eventLoop += seconds;
    else if (Number(fields[16]) > 0) cpu.niced += seconds;
    else cpu.other += seconds;
  }
  return cpu;
}

/** `b − a`, role by role. */
export function cpuBetween(a: ThreadCpu, b: ThreadCpu): ThreadCpu {
  return {
    eventLoop: b.eventLoop - a.eventLoop,
    niced: b.niced - a.niced,
    other: b.other - a.other,
  };
}

export class SampleApp {
  private nextId = 1;
  private readonly waiting = new Map<number, (result: Record<string, unknown>) => void>();
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly output: () => string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.on('message', (raw) => {
      const message = raw as FixtureReply;
      if (message.type !== 'reply') return;
      this.waiting.get(message.id)?.(message.result ?? {});
      this.waiting.delete(message.id);
    });
  }

  /**
   * Starts the app on `databaseUrl` with a fresh ES256 key, the throttle and lockout out of the
   * way (the loads log in thousands of times from one address), TOTP off, and port 0; resolves
   * when it listens. Its stdout and stderr (one audit line per event) go to a log file in `dir`,
   * as to a log collector: its synchronous writes never wait for a reader, and reading them
   * costs the runner (the load generator) nothing. The runner reads the file's tail for the
   * "Listening on" line and for error messages.
   */
  static start(name: string, options: SampleAppOptions): Promise<SampleApp> {
    if (!existsSync(fileURLToPath(SAMPLE_MAIN))) {
      throw new Error(`${fileURLToPath(SAMPLE_MAIN)} is missing: run npm run build first`);
    }
    const dataDir = join(options.dir, `${name}-data`);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const keysFile = writeJwks(join(options.dir, `${name}-jwks.json`), [
      generateJwk('ES256', `${name}-key`),
    ]);
    const env: Record<string, string | undefined> = {
      ...process.env,
      NODE_ENV: 'production',
      NO_COLOR: '1',
      PORT: '0',
      DATABASE_URL: options.databaseUrl,
      JWT_KEYS_FILE: keysFile,
      DATA_DIR: dataDir,
      THROTTLE_LIMIT: '1000000',
      LOCKOUT_MAX_ATTEMPTS: '1000',
      TOTP_ENABLED: 'false',
      ...options.env,
    };
    // A single instance: no Redis, whatever the runner's environment says.
    delete env.REDIS_URL;
    const logFile = join(options.dir, `${name}.log`);
    const logFd = openSync(logFile, 'a', 0o600);
    const child = fork(fileURLToPath(HOST), [], {
      env,
      execArgv: ['--expose-gc', ...(options.execArgv ?? [])],
      stdio: ['ignore', logFd, logFd, 'ipc'],
    });
    closeSync(logFd);
    running.add(child);
    child.once('exit', () => running.delete(child));
    const output = () => tail(logFile, 8192);
    const timeoutMs = options.timeoutMs ?? 60_000;

    return new Promise((resolve, reject) => {
      const started = Date.now();
      let exitCode: number | null | undefined;
      child.once('exit', (code) => (exitCode = code ?? -1));
      const poll = () => {
        // eslint-disable-next-line no-control-regex
        const plain = output().replace(/\x1b\[[0-9;]*m/g, '');
        const listening = /Listening on https?:\/\/[^\s/]*:(\d+)/.exec(plain);
        if (listening) {
          resolve(new SampleApp(name, child, Number(listening[1]), output));
        } else if (exitCode !== undefined) {
          reject(new Error(`${name} exited with code ${exitCode} during start-up\n${plain}`));
        } else if (Date.now() - started > timeoutMs) {
          child.kill('SIGKILL');
          reject(new Error(`${name} did not start within ${timeoutMs} ms\n${plain}`));
        } else {
          setTimeout(poll, 50);
        }
      };
      poll();
    });
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The app's recent stdout/stderr (the end of its log file). */
  get recentOutput(): string {
    return this.output();
  }

  /** VmRSS now, bytes. */
  rss(): number {
    return residentBytes(this.pid);
  }

  /** CPU time of the app's threads so far (see `threadCpu`). */
  cpu(): ThreadCpu {
    return threadCpu(this.pid);
  }

  private request(body: { cmd: 'stats'; gc?: boolean } | { cmd: 'mark' }) {
    const id = this.nextId++;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.child.send({ ...body, id } as FixtureRequest, (error) => {
        if (error) {
          this.waiting.delete(id);
          reject(error);
        }
      });
    });
  }

  /** V8's figures (`process.memoryUsage()`), after two full GCs with `gc` (`--expose-gc`). */
  async memory(gc = false): Promise<{ heapUsed: number; heapTotal: number; rss: number }> {
    return (await this.request({ cmd: 'stats', gc })) as {
      heapUsed: number;
      heapTotal: number;
      rss: number;
    };
  }

  /** The app's monotonic clock in µs (the clock of its CPU profile's timestamps). */
  async mark(): Promise<number> {
    return (await this.request({ cmd: 'mark' })).monotonicUs as number;
  }

  /** `count` accounts through `POST /accounts`, one after the other. */
  async createAccounts(count: number, prefix = 'bench'): Promise<Credentials[]> {
    const accounts: Credentials[] = [];
    for (let i = 0; i < count; i++) {
      const username = `${prefix}-user-${i}`;
      const password = `bench password ${i}, long enough`;
      const response = await fetch(this.url('/accounts'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      const text = await response.text();
      if (response.status !== 201) {
        throw new Error(`${this.name}: POST /accounts answered ${response.status}: ${text}`);
      }
      accounts.push({ username, password, secretKey: (JSON.parse(text) as Credentials).secretKey });
    }
    return accounts;
  }

  /** Exits the app (writing its CPU profile, if any) and waits for the process to end. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.send({ id: 0, cmd: 'stop' } satisfies FixtureRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
