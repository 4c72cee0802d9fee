import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` (as written by `node --cpu-prof`) that are read here. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Time per function (and per package) over a window of a profile, per request served. */
export interface ProfileSummary {
  file: string;
  windowMs: number;
  requests: number;
  /** µs of CPU per request, by function (self time) and by where the code lives. */
  self: Map<string, number>;
  inclusive: Map<string, number>;
  categories: Map<string, number>;
}

const ROOT = process.cwd();

function location(url: string): string {
  if (!url) return '';
  let path = url.replace(/^file:\/\//, '');
  if (path.startsWith(ROOT)) path = path.slice(ROOT.length + 1);
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) path = path.slice(nm + 'node_modules/'.length);
  return path;
}

function category(name: string, url: string): string {
  if (name.startsWith('(') && !url) return name; // (idle), (program), (garbage collector)
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = location(url);
  if (url.includes('node_modules/')) {
    const parts = path.split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (path.startsWith('dist/lib/')) return 'nestjs-rest-2fa (dist/lib)';
  if (path.startsWith('dist/bench/')) return 'bench fixture';
  return path;
}

function frameKey(name: string, url: string, line: number): string {
  const where = location(url);
  return where ? `${name || '(anonymous)'} (${where}:${line + 1})` : name || '(anonymous)';
}

/**
 * The newest main-thread `.cpuprofile` in `dir` (the process writes it on exit). Node names them
 * `CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile`, and worker threads (the password
 * hasher's, for one) write their own with a thread id above 0: those are left out.
 */
export function findProfile(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  const main = files.filter((f) => f.split('.')[4] === '0');
  return join(dir, (main.length > 0 ? main : files).sort().at(-1)!);
}

/**
 * Summarises the samples of `file` taken between `fromUs` and `toUs` (the fixture's monotonic
 * clock, which V8 also stamps its samples with), normalised by the `requests` served then.
 * Falls back to the whole profile if the window does not overlap it.
 */
export function summariseProfile(
  file: string,
  requests: number,
  fromUs?: number,
  toUs?: number,
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);

  let from = fromUs ?? profile.startTime;
  let to = toUs ?? profile.endTime;
  if (to <= profile.startTime || from >= profile.endTime) {
    from = profile.startTime;
    to = profile.endTime;
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const categories = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) =>
    map.set(key, (map.get(key) ?? 0) + us);

  let time = profile.startTime;
  let windowUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (time < from || time > to) continue;
    windowUs += weight;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    add(self, frameKey(functionName, url, lineNumber), weight);
    add(categories, category(functionName, url), weight);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const key = frameKey(frame.functionName, frame.url, frame.lineNumber);
      if (!seen.has(key)) {
        seen.add(key);
        add(inclusive, key, weight);
      }
    }
  }
  const perRequest = (map: Map<string, number>) => {
    for (const [key, us] of map) map.set(key, requests > 0 ? us / requests : 0);
    return map;
  };
  return {
    file,
    windowMs: windowUs / 1000,
    requests,
    self: perRequest(self),
    inclusive: perRequest(inclusive),
    categories: perRequest(categories),
  };
}

/** The `n` largest entries, optionally as the difference `a - b`, largest first. */
export function top(
  a: Map<string, number>,
  n: number,
  b?: Map<string, number>,
  keep: (key: string) => boolean = () => true,
): [string, number][] {
  const keys = new Set([...a.keys(), ...(b?.keys() ?? [])]);
  return [...keys]
    .filter(keep)
    .map((key): [string, number] => [key, (a.get(key) ?? 0) - (b?.get(key) ?? 0)])
    .sort((x, y) => y[1] - x[1])
    .slice(0, n);
}

/** Frames of the guard's path: the module, Passport, Nest's guard plumbing. */
export function isGuardFrame(key: string): boolean {
  return /dist\/lib\/|passport|jsonwebtoken|jws\/|guards-consumer|auth\.guard/.test(key);
}
