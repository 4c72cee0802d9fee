import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What a hashing thread is asked to do. */
type Job =
  | { op: 'hash'; password: string; options: object }
  | { op: 'verify'; hash: string; password: string };

interface Pending {
  job: Job;
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
}

/**
 * The code of a hashing thread. It lowers its own scheduling priority first: on Linux the nice
 * value belongs to the thread (setpriority on the calling thread only), so the event loop keeps
 * its priority and a flood of logins takes only the CPU that requests do not need. Elsewhere a
 * process-wide call would lower the event loop too, so it is skipped.
 */
const THREAD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
if (process.platform === 'linux' && workerData.nice > 0) {
  try { require('node:os').setPriority(workerData.nice); } catch {}
}
const argon2 = require(workerData.argon2);
parentPort.on('message', (job) => {
  try {
    const value = job.op === 'hash'
      ? argon2.hashSync(job.password, job.options)
      : argon2.verifySync(job.hash, job.password);
    parentPort.postMessage({ value });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** One thread and the job it runs, if any. */
interface Slot {
  worker: Worker;
  current: Pending | null;
}

/**
 * argon2 on a few threads of our own, `size` at once, first come first served. Threads rather
 * than libuv's pool: they can run at a lower priority than the event loop (see THREAD_CODE),
 * and hashing never queues behind, or in front of, the application's file and DNS work.
 */
export class Argon2Pool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly argon2Path = createRequire(import.meta.url).resolve('@node-rs/argon2');
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly nice: number,
  ) {}

  hash(password: string, options: object): Promise<string> {
    return this.run({ op: 'hash', password, options }) as Promise<string>;
  }

  verify(hash: string, password: string): Promise<boolean> {
    return this.run({ op: 'verify', hash, password }) as Promise<boolean>;
  }

  /** Stops every thread; jobs not yet finished fail. */
  async close(): Promise<void> {
    this.closed = true;
    const failed = new Error('The password hasher was shut down');
    for (const pending of this.queue.splice(0)) pending.reject(failed);
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private run(job: Job): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('The password hasher was shut down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => s.current === null) ?? this.spawn();
      if (!slot) return;
      const pending = this.queue.shift()!;
      slot.current = pending;
      slot.worker.postMessage(pending.job);
    }
  }

  /** A new thread when fewer than `size` exist, else `null`. */
  private spawn(): Slot | null {
    if (this.slots.length >= this.size) return null;
    const worker = new Worker(THREAD_CODE, {
      eval: true,
      workerData: { argon2: this.argon2Path, nice: this.nice },
    });
    // Idle threads never keep the process alive.
    worker.unref();
    const slot: Slot = { worker, current: null };
    worker.on('message', (message: { value?: string | boolean; error?: string }) => {
      const pending = slot.current;
      slot.current = null;
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.value!);
      this.dispatch();
    });
    // A thread that dies fails its job and is replaced by the next dispatch.
    const lost = (error: Error) => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      slot.current?.reject(error);
      slot.current = null;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`A password hashing thread exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }
}
