import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';

/**
 * The README is the package's page on npm, where relative links lead nowhere and where a
 * reader copies the install lines as they are: they must match the manifest.
 */
const readme = readFileSync('README.md', 'utf8');
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  repository: { url: string };
  homepage: string;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
const REPOSITORY = manifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');

/** The section under a `## `/`### ` heading, up to the next heading of that level or above. */
function section(heading: string): string {
  const start = readme.indexOf(`${heading}\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const level = heading.split(' ')[0];
  const rest = readme.slice(start + heading.length);
  const next = rest.search(new RegExp(`\\n#{2,${level.length}} `));
  return next === -1 ? rest : rest.slice(0, next);
}

/** Each `npm i …` command of `text` (continuation lines joined, comments dropped) as packages. */
function npmInstalls(text: string): string[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  return [...joined.matchAll(/^npm i(?:nstall)? ([^#\n]+)/gm)].map((m) =>
    m[1]
      .trim()
      .split(/\s+/)
      .filter((word) => !word.startsWith('-')),
  );
}

const requiredPeers = Object.keys(manifest.peerDependencies).filter(
  (name) => !manifest.peerDependenciesMeta[name]?.optional,
);
const optionalPeers = Object.keys(manifest.peerDependencies).filter(
  (name) => manifest.peerDependenciesMeta[name]?.optional,
);

describe('README on the npm page', () => {
  const install = section('### Install');

  it('installs the module with exactly its required peers on the first line', () => {
    const [first] = npmInstalls(install);
    expect(first.sort()).toEqual(['nestjs-rest-2fa', ...requiredPeers].sort());
  });

  it('says how to install each optional peer, one command each', () => {
    const singles = npmInstalls(install).filter((packages) => packages.length === 1);
    for (const name of optionalPeers) expect(singles).toContainEqual([name]);
  });

  it('has an install line for every package its code examples import', () => {
    const installed = new Set(npmInstalls(readme).flat());
    const imported = new Set(
      [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].flatMap((block) =>
        [...block[1].matchAll(/from '([^'.][^']*)'/g)].map((m) =>
          m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0],
        ),
      ),
    );
    const missing = [...imported].filter(
      (name) => !installed.has(name) && !name.startsWith('node:') && !builtinModules.includes(name),
    );
    expect(imported.size).toBeGreaterThan(5);
    expect(missing).toEqual([]);
  });

  it('links only absolutely or to its own headings, and to files that exist', () => {
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    expect(targets.filter((t) => !/^(https?:\/\/|#)/.test(t))).toEqual([]);
    const files = targets
      .filter((t) => t.startsWith(`${REPOSITORY}/blob/main/`))
      .map((t) => t.slice(`${REPOSITORY}/blob/main/`.length).split('#')[0]);
    expect(files).toEqual(expect.arrayContaining(['SECURITY.md', 'docs/DECISIONS.md']));
    expect(files.filter((file) => !existsSync(file))).toEqual([]);
    // GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.
    const anchors = new Set(
      [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        m[1]
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      ),
    );
    const broken = targets.filter((t) => t.startsWith('#') && !anchors.has(t.slice(1)));
    expect(broken).toEqual([]);
  });

  it('names the repository its links point at in package.json', () => {
    expect(REPOSITORY).toMatch(/^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/);
    expect(manifest.homepage.startsWith(REPOSITORY)).toBe(true);
    expect(readme).toContain(`${REPOSITORY}/blob/main/`);
  });
});
