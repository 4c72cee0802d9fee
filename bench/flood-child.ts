/**
 * A login flood in a process of its own, forked by bench/support/flood-process.ts: autocannon
 * runs here, so the flood's client work never shares the runner's event loop with the
 * measurements taken there (the probe's µs timings, the throughput hammer). Commands arrive
 * over the fork IPC channel: `start` (what to flood) then `stop` (answers the result).
 */
import { flood, type HammerOptions, type LoadResult } from './support/load.js';

export type FloodChildCommand =
  { cmd: 'start'; url: string; spec: Omit<HammerOptions, 'duration'> } | { cmd: 'stop' };

export type FloodChildReply =
  { type: 'started' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

const reply = (message: FloodChildReply, then?: () => void) =>
  process.send?.(message, undefined, {}, () => then?.());

let running: ReturnType<typeof flood> | undefined;

process.on('disconnect', () => process.exit(0));
process.on('message', (raw) => {
  const command = raw as FloodChildCommand;
  void (async () => {
    try {
      if (command.cmd === 'start') {
        running = flood(command.url, command.spec);
        reply({ type: 'started' });
      } else if (running) {
        const result = await running.stop();
        reply({ type: 'result', result }, () => process.exit(0));
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reply({ type: 'error', message }, () => process.exit(1));
    }
  })();
});
