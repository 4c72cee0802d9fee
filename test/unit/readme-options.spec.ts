import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { TWO_FACTOR_AUTH_DEFAULTS } from '../../lib/index.js';

/** `a.b = value` for every leaf of the defaults object. */
function flatten(value: unknown, prefix = ''): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { [prefix]: value };
  return Object.assign(
    {},
    ...Object.entries(value).map(([key, child]) =>
      flatten(child, prefix ? `${prefix}.${key}` : key),
    ),
  );
}

/** The rows of the README's options table: `| \`name\` | \`default\` | meaning |`. */
function readmeOptions(): Record<string, string> {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## Options'));
  const table = section.slice(0, section.indexOf('\n## ', 5));
  const rows: Record<string, string> = {};
  for (const match of table.matchAll(/^\| `([\w.]+)` \| (`[^`]*`|—|required) \|/gm)) {
    rows[match[1]] = match[2];
  }
  return rows;
}

describe('README options table', () => {
  const rows = readmeOptions();
  const defaults = flatten(TWO_FACTOR_AUTH_DEFAULTS);

  it('lists every default with the value the code uses', () => {
    // The one default computed from the machine: documented as its formula.
    expect(rows['password.concurrency']).toBe('`CPUs on Linux, else max(1, CPUs - 1)`');
    expect(defaults['password.concurrency']).toBe(
      process.platform === 'linux'
        ? availableParallelism()
        : Math.max(1, availableParallelism() - 1),
    );
    const fixed = { ...defaults };
    delete fixed['password.concurrency'];
    for (const [name, value] of Object.entries(fixed)) {
      expect({ name, readme: rows[name] }).toEqual({
        name,
        readme: `\`${JSON.stringify(value).replace(/"/g, "'")}\``,
      });
    }
  });

  it('lists the required options and nothing that does not exist', () => {
    expect(rows.issuer).toBe('required');
    expect(rows.keys).toBe('required');
    const known = new Set([
      ...Object.keys(defaults),
      'issuer',
      'keys',
      'audience',
      'secretKeyPepper',
      'redis',
      'totp.encryptionKeys',
      'totp.issuer',
      'introspection.clients',
      'usernames.validate',
      'claims',
      'accounts.entity',
      'accounts.fields.id',
      'accounts.fields.username',
      'accounts.fields.passwordHash',
      'accounts.fields.disabled',
      'dpop.publicUrl',
    ]);
    for (const name of Object.keys(rows))
      expect({ name, known: known.has(name) }).toEqual({ name, known: true });
  });
});
