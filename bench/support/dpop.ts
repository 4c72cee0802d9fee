import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * DPoP proofs (RFC 9449) for the bench's client, made ahead of each run: signing one per request
 * inside the load generator would take CPU from the server under test on a 2-core machine, and
 * the figure would say more about the client than about the guard. Each proof is used once.
 */
export class DpopProofPool {
  private readonly privateKey: KeyObject;
  private readonly header: string;
  private proofs: string[] = [];
  private next = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    this.header = encode({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } });
  }

  /** One proof of `method` `url` (with `ath` of `accessToken`, when given), made now. */
  proof(method: string, url: string, accessToken?: string): string {
    const claims: Record<string, unknown> = {
      jti: randomUUID(),
      htm: method,
      htu: url,
      iat: Math.floor(Date.now() / 1000),
    };
    if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
    const input = `${this.header}.${encode(claims)}`;
    const signature = sign('sha256', Buffer.from(input), {
      key: this.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${signature.toString('base64url')}`;
  }

  /** Makes `count` fresh proofs of `GET url` for `accessToken`, replacing the unused ones. */
  fill(count: number, url: string, accessToken: string): void {
    this.proofs = Array.from({ length: count }, () => this.proof('GET', url, accessToken));
    this.next = 0;
  }

  /** The next unused proof (made now if the pool ran dry, which costs the client CPU). */
  take(url: string, accessToken: string): string {
    return this.next < this.proofs.length
      ? this.proofs[this.next++]
      : this.proof('GET', url, accessToken);
  }
}

/** Logs in with a DPoP proof: the access token returned is bound to the pool's key. */
export async function dpopLogin(
  base: string,
  credentials: { username: string; password: string; secretKey: string },
  pool: DpopProofPool,
): Promise<string> {
  const url = `${base}/auth/token`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: pool.proof('POST', url) },
    body: JSON.stringify(credentials),
  });
  const body = (await response.json()) as { access_token?: string; token_type?: string };
  if (response.status !== 200 || body.token_type !== 'DPoP' || !body.access_token) {
    throw new Error(`DPoP login answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}
