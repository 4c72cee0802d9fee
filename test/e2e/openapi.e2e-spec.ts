import { Validator } from '@seriousme/openapi-schema-validator';
import { createSuiteEnvironment, type SuiteEnvironment } from '../support/sample-app.harness.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

type Operation = {
  responses: Record<string, { description?: string; content?: unknown }>;
  security?: Record<string, string[]>[];
  requestBody?: unknown;
};

describe('OpenAPI document', () => {
  let suite: SuiteEnvironment;
  let running: SpawnedApp;
  let document: {
    paths: Record<string, Record<string, Operation>>;
    components: { securitySchemes: object };
  };

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      INTROSPECTION_CLIENTS: 'docs:an-introspection-secret-for-docs-only',
    });
    running = await spawnSampleApp(suite.env);
    document = (await running.http().get('/docs-json').expect(200)).body;
  });
  afterAll(async () => {
    await running?.stop();
    await suite?.cleanup();
  });

  it('is a valid OpenAPI document', async () => {
    const result = await new Validator().validate(document as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route the app serves', () => {
    const mapped = [...running.output().matchAll(/Mapped \{([^,]+), (\w+)\} route/g)].map(
      ([, path, method]) => `${method.toLowerCase()} ${path.replace(/:(\w+)/g, '{$1}')}`,
    );
    expect(mapped.length).toBeGreaterThan(10);
    const documented = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(documented.sort()).toEqual(mapped.sort());
  });

  it('documents a success and the errors of every operation, and the bearer scheme', () => {
    expect(document.components.securitySchemes).toHaveProperty('bearer');
    for (const [path, ops] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const codes = Object.keys(op.responses);
        expect({
          route: `${method} ${path}`,
          success: codes.some((c) => c.startsWith('2')),
        }).toEqual({
          route: `${method} ${path}`,
          success: true,
        });
        const open = ['/health', '/.well-known/jwks.json'].includes(path);
        if (!open) {
          expect({
            route: `${method} ${path}`,
            errors: codes.some((c) => c.startsWith('4')),
          }).toEqual({
            route: `${method} ${path}`,
            errors: true,
          });
        }
        if (path.startsWith('/me')) {
          expect(op.security).toEqual(expect.arrayContaining([{ bearer: [] }]));
          expect(codes).toContain('401');
        }
      }
    }
    expect(Object.keys(document.paths['/auth/token'].post.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '429', '503']),
    );
    expect(Object.keys(document.paths['/accounts'].post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '409']),
    );
  });
});
