import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';

/** The built sample app (`npm run build`), as `npm start` runs it. */
export const SAMPLE_MAIN = join(process.cwd(), 'dist/sample-app/src/main.js');

/** A sample app running in its own Node process, as `npm start` starts it. */
export interface SpawnedApp {
  url: string;
  child: ChildProcess;
  output: () => string;
  http: () => ReturnType<typeof request>;
  /**
   * Sends SIGTERM and waits for the process to end (Nest closes the app, then re-raises the
   * signal). Rejects if it is still running after `timeoutMs`: something kept it alive.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts `node dist/sample-app/src/main.js` with `env` on a free port and waits until it listens.
 * A real process exercises Node's own module loading (and everything Jest cannot load).
 */
export async function spawnSampleApp(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<SpawnedApp> {
  if (!existsSync(SAMPLE_MAIN))
    throw new Error(`${SAMPLE_MAIN} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [SAMPLE_MAIN], {
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  let stopping = false;

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`sample app did not start:\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      const match = /Listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace('[::1]', '127.0.0.1'));
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      if (!stopping) reject(new Error(`sample app exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    http: () => request(url),
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null || stopping) return;
      stopping = true;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`sample app still running ${timeoutMs} ms after SIGTERM:\n${output}`));
        }, timeoutMs);
      });
      try {
        await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
