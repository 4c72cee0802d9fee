import autocannon, { type AutocannonOptions, type AutocannonResult } from 'autocannon';
import { Agent, request as httpRequest } from 'node:http';
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

/** Autocannon options without `undefined` members (autocannon takes those as values). */
function request(url: string, options: Omit<HammerOptions, 'duration'>): AutocannonOptions {
  return {
    url,
    connections: options.connections,
    method: options.method ?? 'GET',
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
  };
}

/**
 * Autocannon against one URL for `duration` seconds with `connections` keep-alive connections.
 * Any non-2xx answer or socket error makes the run fail: a fast 401 or 503 is not a result.
 */
export async function hammer(url: string, options: HammerOptions): Promise<LoadResult> {
  const result = await autocannon({
    ...request(url, options),
    duration: options.duration,
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
 * does, over up to 64 keep-alive sockets, each timed from the moment it is sent to the end of
 * its response. Unlike a saturating closed loop, this measures how long a request waits when
 * the server's event loop is busy (e.g. with logins), not how many requests fit.
 */
export async function probe(
  url: string,
  options: { rate: number; duration: number; headers?: Record<string, string> },
): Promise<ProbeResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(url);
  const latencies: number[] = [];
  const failures: string[] = [];
  const interval = 1000 / options.rate;
  let sent = 0;
  let inFlight = 0;
  const start = performance.now();
  const end = start + options.duration * 1000;

  const fire = () =>
    new Promise<void>((resolve) => {
      inFlight++;
      const t0 = performance.now();
      const req = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          headers: options.headers,
          agent,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - t0);
            if (res.statusCode !== 200) failures.push(`HTTP ${res.statusCode}`);
            inFlight--;
            resolve();
          });
        },
      );
      req.on('error', (error) => {
        failures.push(error.message);
        inFlight--;
        resolve();
      });
      req.end();
    });

  while (performance.now() < end) {
    const due = Math.floor((performance.now() - start) / interval) + 1;
    while (sent < due) {
      sent++;
      void fire();
    }
    await sleep(1);
  }
  while (inFlight > 0) await sleep(5);
  agent.destroy();
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
