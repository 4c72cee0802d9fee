import { isIP } from 'node:net';

/**
 * Which proxies in front of the app may tell it the client's address (`X-Forwarded-For`):
 * the last `hops` of them, or those whose address is in `addresses`.
 */
export type TrustProxy = { hops: number } | { addresses: string[] };

/** Who may be trusted, as Express's `trust proxy` and Fastify's `trustProxy` both accept it. */
export type TrustProxySetting = ((address: string, hop: number) => boolean) | string[];

/** The largest hop count accepted: a deeper chain of proxies is a configuration mistake. */
export const MAX_TRUST_PROXY_HOPS = 16;

/** The named ranges proxy-addr (behind both Express and Fastify) knows. */
const NAMED_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

const USAGE =
  `TRUST_PROXY must be a hop count from 1 to ${MAX_TRUST_PROXY_HOPS} or a comma-separated list of proxy ` +
  'addresses or CIDRs (e.g. 1, or 10.0.0.0/8,fd00::/8, or loopback); leave it unset when no proxy is in front';

/**
 * Parses `TRUST_PROXY`: a hop count (1–16) or a list of proxy addresses/CIDRs, IPv4 or IPv6
 * (and proxy-addr's `loopback`, `linklocal`, `uniquelocal`). Returns an error message naming the
 * variable for anything else, `true` and `false` included: `true` would believe any
 * `X-Forwarded-For` a client sends and give every forged address a fresh throttling budget.
 */
export function parseTrustProxy(value: string): TrustProxy | string {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) {
    const hops = Number(trimmed);
    if (hops < 1 || hops > MAX_TRUST_PROXY_HOPS) return `${USAGE} (got the hop count ${hops})`;
    return { hops };
  }
  if (trimmed === 'true') {
    return `${USAGE}; "true" would trust any X-Forwarded-For a client sends, so every forged address would get a fresh throttling budget`;
  }
  const entries = trimmed.split(',').map((entry) => entry.trim());
  const addresses: string[] = [];
  for (const entry of entries) {
    const problem = checkAddress(entry);
    if (problem) return `${USAGE} (${problem})`;
    addresses.push(entry);
  }
  return { addresses };
}

/** Why `entry` is not a proxy address, CIDR or named range, or `undefined` if it is one. */
function checkAddress(entry: string): string | undefined {
  if (NAMED_RANGES.includes(entry)) return undefined;
  const shown = JSON.stringify(entry.slice(0, 64));
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `${shown} is not an IPv4 or IPv6 address`;
  if (slash === -1) return undefined;
  const prefix = entry.slice(slash + 1);
  const max = version === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
    return `${shown} needs a prefix length from 1 to ${max}`;
  }
  if (Number(prefix) === 0) return `${shown} would trust every address, like "true"`;
  return undefined;
}

/**
 * The setting to hand to Express (`app.set('trust proxy', …)`) and to Fastify (`trustProxy`), so
 * that both find the same client address. A hop count is passed as a function: Fastify 5 trusts
 * no proxy at all when given a number (it cannot check the immediate peer), whereas Express
 * trusts that many; the function `hop < hops` means the same to both (the peer is hop 0, so with
 * 1 hop the client is the last `X-Forwarded-For` entry). Lists are compiled by proxy-addr in both.
 */
export function trustProxySetting(trust: TrustProxy): TrustProxySetting {
  if ('hops' in trust) {
    const { hops } = trust;
    return (_address: string, hop: number) => hop < hops;
  }
  return [...trust.addresses];
}
