import autocannon, {
  type AutocannonOptions,
  type AutocannonRequest,
  type AutocannonResult,
} from 'autocannon';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { percentile, sleep } from './stats.js';

/** One closed-loop load run: what the tables report. */
export interface LoadResult {
  rps: number;
  /** Latency percentiles in ms (autocannon's resolution: 1 ms). */
  p50: number;
  p99: number;
  requests: number;
  seconds: number;
}

export interface HammerOptions {
  connections: number;
  duration: number;
  headers?: Record<string, string>;
  /** Headers computed for each request (added to `headers`): e.g. a different token each time. */
  headersFor?: () => Record<string, string>;
  /** Send exactly this many requests instead of running for `duration`. */
  amount?: number;
  method?: string;
  body?: string;
}

function describeFailures(url: string, result: AutocannonResult): string {
  const codes = Object.entries(result.statusCodeStats)
    .map(([code, { count }]) => `${code}: ${count}`)
    .join(', ');
  return `${url}: ${result.non2xx} non-2xx responses (${codes}), ${result.errors} errors, ${result.timeouts} timeouts`;
}

function summarise(url: string, result: AutocannonResult): LoadResult {
  if (result.non2xx > 0 || result.errors > 0) throw new Error(describeFailures(url, result));
  const seconds = result.duration;
  return {
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    seconds,
  };
}

function perRequest(headersFor: () => Record<string, string>) {
  return (req: AutocannonRequest) => ({ ...req, headers: { ...req.headers, ...headersFor() } });
}

/** Autocannon options without `undefined` members (autocannon takes those as values). */
function request(url: string, options: Omit<HammerOptions, 'duration'>): AutocannonOptions {
  const { headersFor } = options;
  return {
    url,
    connections: options.connections,
    method: options.method ?? 'GET',
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
    // autocannon rebuilds a request whose `setupRequest` is a function before every send. Its
    // clients share the request objects, so each first send would repeat the one built last:
    // each client gets requests of its own (a DPoP proof must never be sent twice).
    ...(headersFor
      ? {
          requests: [{ setupRequest: perRequest(headersFor) }],
          setupClient: (client: { setRequests(requests: object[]): void }) =>
            client.setRequests([{ setupRequest: perRequest(headersFor) }]),
        }
      : {}),
  };
}

/**
 * Autocannon against one URL for `duration` seconds with `connections` keep-alive connections.
 * Any non-2xx answer or socket error makes the run fail: a fast 401 or 503 is not a result.
 */
export async function hammer(url: string, options: HammerOptions): Promise<LoadResult> {
  const result = await autocannon({
    ...request(url, options),
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.duration }),
    timeout: 10,
  });
  return summarise(url, result);
}

/** A load that runs until `stop()` (the login flood); `stop()` returns its result. */
export function flood(url: string, options: Omit<HammerOptions, 'duration'>) {
  const tracker = autocannon({ ...request(url, options), duration: 3600, timeout: 30 });
  return {
    async stop(): Promise<LoadResult> {
      tracker.stop();
      return summarise(url, await tracker);
    },
  };
}

export interface ProbeResult {
  /** Latency percentiles in ms, measured with a µs clock. */
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/**
 * Open-loop latency probe: `rate` GET requests per second on a schedule, whatever the server
 * does, each timed from the moment it is written to the end of its answer. Unlike a saturating
 * closed loop, this measures how long a request waits when the server's event loop is busy
 * (e.g. with logins), not how many requests fit. It speaks through `LeanConnection`s opened
 * before the clock starts (a request takes an idle one, or opens one if all are busy): Node's
 * `http` client would add its own CPU per request, on the cores the storm keeps busy, to what
 * is measured.
 */
export async function probe(
  url: string,
  options: { rate: number; duration: number; headers?: Record<string, string> },
): Promise<ProbeResult> {
  const target = new URL(url);
  const open = () => new LeanConnection(target.hostname, Number(target.port));
  const idle = await Promise.all(
    Array.from({ length: PROBE_CONNECTIONS }, async () => {
      const connection = open();
      await connection.send('GET', target.pathname, undefined, options.headers);
      return connection;
    }),
  );
  const all = [...idle];
  const latencies: number[] = [];
  const failures: string[] = [];
  const interval = 1000 / options.rate;
  let sent = 0;
  let inFlight = 0;
  const start = performance.now();
  const end = start + options.duration * 1000;

  const fire = async () => {
    inFlight++;
    let connection = idle.pop();
    if (!connection) all.push((connection = open()));
    const t0 = performance.now();
    try {
      const { status } = await connection.send('GET', target.pathname, undefined, options.headers);
      latencies.push(performance.now() - t0);
      if (status !== 200) failures.push(`HTTP ${status}`);
      idle.push(connection);
    } catch (error) {
      failures.push((error as Error).message);
      connection.close();
    } finally {
      inFlight--;
    }
  };

  while (performance.now() < end) {
    const due = Math.floor((performance.now() - start) / interval) + 1;
    while (sent < due) {
      sent++;
      void fire();
    }
    await sleep(1);
  }
  while (inFlight > 0) await sleep(5);
  for (const connection of all) connection.close();
  if (failures.length > 0) {
    throw new Error(`${url}: ${failures.length} failed probe requests (${failures[0]}, …)`);
  }
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    count: latencies.length,
  };
}

/** Connections the probe opens before it starts (more are opened if ever all are busy). */
const PROBE_CONNECTIONS = 8;

/** One request of a closed-loop client. */
export interface LoopRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

export interface ClosedLoopOptions {
  /** Clients, each with one keep-alive connection and one request in flight at a time. */
  clients: number;
  /** Seconds to run; or stop when `done()` says so (checked before each request). */
  duration?: number;
  done?: () => boolean;
  /** The next request of client `client`. */
  next: (client: number) => LoopRequest;
  /** Sees every 2xx answer (its parsed JSON body); throwing fails the run. */
  onAnswer?: (client: number, body: unknown) => void;
  /** The one status every answer must have instead of a 2xx (a load of refused requests). */
  expectStatus?: number;
}

/** An answer as the closed loop reads it. */
interface Answer {
  status: number;
  text: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * One keep-alive HTTP/1.1 connection that speaks just what the closed loop needs: a request
 * written in one piece, an answer read to its `Content-Length`. Node's `http` client cost the
 * runner about 250 µs of CPU per request on a slow 2-vCPU machine (its agent, streams and
 * parser objects), CPU taken from the app it measures on the same cores; this costs a fraction.
 * An answer without `Content-Length` (chunked) fails the run rather than being misread.
 */
class LeanConnection {
  private socket: Socket | null = null;
  /** What has arrived of the answer being read. */
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve(answer: Answer): void; reject(error: Error): void } | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  send(
    method: string,
    path: string,
    payload: string | undefined,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const socket = this.socket ?? this.connect();
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    head +=
      payload === undefined
        ? '\r\n'
        : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      socket.write(head);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connect(): Socket {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    this.buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    const lost = (error?: Error) => {
      if (this.socket === socket) this.socket = null;
      this.fail(error ?? new Error('the server closed the connection'));
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    return socket;
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(error);
  }

  private read(chunk: Buffer): void {
    const data = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = data.indexOf(HEADER_END);
    if (end === -1) {
      this.buffered = data;
      return;
    }
    const head = data.toString('latin1', 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      this.fail(new Error(`an answer without Content-Length: ${head}`));
      this.close();
      return;
    }
    const total = end + HEADER_END.length + Number(length[1]);
    if (data.length < total) {
      this.buffered = data;
      return;
    }
    this.buffered = Buffer.alloc(0);
    const answer = {
      status: Number(head.slice(9, 12)),
      text: data.toString('utf8', end + HEADER_END.length, total),
    };
    if (/\r\nconnection: *close/i.test(head)) this.close();
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.resolve(answer);
  }
}

/**
 * Closed-loop clients written for flows autocannon cannot express: each client sends its next
 * request when the previous answer has arrived, which lets a client chain its refresh tokens
 * (every answer holds the token of the next request). Latencies are timed with a µs clock. Any
 * non-2xx answer or socket error stops every client and fails the run.
 */
export async function closedLoop(base: string, options: ClosedLoopOptions): Promise<LoadResult> {
  const target = new URL(base);
  const latencies: number[] = [];
  let failure: Error | undefined;
  const start = performance.now();
  const end = options.duration !== undefined ? start + options.duration * 1000 : Infinity;
  const finished = () => failure !== undefined || performance.now() >= end || !!options.done?.();

  const send = async (connection: LeanConnection, spec: LoopRequest): Promise<unknown> => {
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const { status, text } = await connection.send(spec.method, spec.path, payload);
    const expected =
      options.expectStatus !== undefined
        ? status === options.expectStatus
        : status >= 200 && status < 300;
    if (!expected) throw new Error(`${spec.method} ${spec.path} answered ${status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      const connection = new LeanConnection(target.hostname, Number(target.port));
      try {
        while (!finished()) {
          const spec = options.next(client);
          const t0 = performance.now();
          const body = await send(connection, spec);
          latencies.push(performance.now() - t0);
          options.onAnswer?.(client, body);
        }
      } catch (error) {
        failure ??= error as Error;
      } finally {
        connection.close();
      }
    }),
  );
  if (failure) throw failure;
  const seconds = (performance.now() - start) / 1000;
  return {
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests: latencies.length,
    seconds,
  };
}

/** Logs in through the real route and returns the access token. */
export async function login(
  base: string,
  credentials: { username: string; password: string; secretKey: string },
): Promise<string> {
  const response = await fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
  });
  if (response.status !== 200) {
    throw new Error(
      `POST ${base}/auth/token answered ${response.status}: ${await response.text()}`,
    );
  }
  return ((await response.json()) as { access_token: string }).access_token;
}

/** Checks that `url` answers `status` (a guard that lets everything through is no benchmark). */
export async function expectStatus(
  url: string,
  status: number,
  headers: Record<string, string> = {},
): Promise<void> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  if (response.status !== status) {
    throw new Error(`GET ${url} answered ${response.status}, expected ${status}`);
  }
}
