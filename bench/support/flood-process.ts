import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FloodChildCommand, FloodChildReply } from '../flood-child.js';
import type { HammerOptions, LoadResult } from './load.js';

const CHILD = new URL('../flood-child.js', import.meta.url);

/**
 * Starts a login flood (autocannon, `spec.connections` keep-alive connections on `url`) in a
 * forked process of its own and resolves once it runs; `stop()` ends it and returns its result
 * (any non-2xx answer fails it, as in the runner).
 */
export async function floodFromProcess(
  url: string,
  spec: Omit<HammerOptions, 'duration'>,
): Promise<{ stop(): Promise<LoadResult> }> {
  const child = fork(fileURLToPath(CHILD), [], {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const next = () =>
    new Promise<FloodChildReply>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`the login flood process exited with ${code}`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message as FloodChildReply);
      });
    });
  const send = (command: FloodChildCommand) => child.send(command);

  const started = next();
  send({ cmd: 'start', url, spec });
  const first = await started;
  if (first.type !== 'started') {
    child.kill('SIGKILL');
    throw new Error(`login flood: ${first.type === 'error' ? first.message : first.type}`);
  }
  return {
    async stop(): Promise<LoadResult> {
      const answered = next();
      send({ cmd: 'stop' });
      const answer = await answered;
      await exited;
      if (answer.type !== 'result') {
        throw new Error(`login flood: ${answer.type === 'error' ? answer.message : answer.type}`);
      }
      return answer.result;
    },
  };
}
