import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's `sample-app/` folder, found from this file whether it runs from source
 * (`sample-app/src/config`) or from the build (`dist/sample-app/src/config`): the nearest
 * ancestor holding `package.json` is the repository root.
 */
function findSampleAppDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('Cannot find the repository root (no package.json above the sample app)');
    dir = parent;
  }
  return join(dir, 'sample-app');
}

export const SAMPLE_APP_DIR = findSampleAppDir();

/** Where development keys and the default SQLite file live (git-ignored). */
export const DEFAULT_DATA_DIR = join(SAMPLE_APP_DIR, 'data');

/**
 * Creates `dir` and any missing parent readable by the owner only (0700): it holds the SQLite
 * file and the development keys. A folder that exists already keeps its mode.
 */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
