import { join } from 'node:path';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';
import { FixtureProcess } from './fixture.js';
import { generateJwk, writeJwks } from './keys.js';
import { expectStatus, login } from './load.js';

const TWO_FACTOR_APP = new URL('../fixtures/two-factor-app.js', import.meta.url);

/** A running two-factor bench fixture, its account, a token of it and its signing key. */
export interface TwoFactorFixture {
  fixture: FixtureProcess;
  token: string;
  credentials: { username: string; password: string; secretKey: string };
  database: string;
  jwk: TwoFactorJwk;
}

/** Starts bench/fixtures/two-factor-app on a fresh SQLite file, logs in and checks the guard. */
export async function startTwoFactor(
  name: string,
  dir: string,
  alg: TwoFactorJwsAlgorithm,
  execArgv: string[] = [],
  env: Record<string, string> = {},
): Promise<TwoFactorFixture> {
  const database = join(dir, `${name}.sqlite`);
  const jwk = generateJwk(alg, `${name}-key`);
  const keysFile = writeJwks(join(dir, `${name}-jwks.json`), [jwk]);
  const fixture = await FixtureProcess.start(name, TWO_FACTOR_APP, {
    env: { BENCH_DB: database, BENCH_KEYS_FILE: keysFile, ...env },
    execArgv,
  });
  const credentials = {
    username: fixture.info.username as string,
    password: fixture.info.password as string,
    secretKey: fixture.info.secretKey as string,
  };
  const token = await login(fixture.url(''), credentials);
  await checkGuard(fixture, token);
  return { fixture, token, credentials, database, jwk };
}

/** The open route answers, the guarded one refuses no token and accepts the real one. */
export async function checkGuard(fixture: FixtureProcess, token: string): Promise<void> {
  await expectStatus(fixture.url('/open'), 200);
  await expectStatus(fixture.url('/guarded'), 401);
  await expectStatus(fixture.url('/guarded'), 401, { authorization: 'Bearer x.y.z' });
  await expectStatus(fixture.url('/guarded'), 200, { authorization: `Bearer ${token}` });
}
