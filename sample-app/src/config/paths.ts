import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `sample-app/` folder, found from this file whether it runs from source or from `dist/`. */
function findSampleAppDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'sample-app');
    if (existsSync(join(candidate, 'src'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the sample-app folder');
    dir = parent;
  }
}

export const SAMPLE_APP_DIR = findSampleAppDir();

/** Where development keys and the default SQLite file live (git-ignored). */
export const DEFAULT_DATA_DIR = join(SAMPLE_APP_DIR, 'data');
