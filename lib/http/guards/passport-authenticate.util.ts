import passport, { type Strategy } from 'passport';

/**
 * Runs one passport strategy for one request. Given the strategy instance (not its name), so
 * that several Nest applications in one process (tests, workers) each use their own: passport's
 * registry of names is process-wide. A fresh `Object.create` per request keeps concurrent
 * requests from sharing passport's per-request callbacks.
 */
export function authenticateWith<T>(
  strategy: object | string,
  request: unknown,
  response: unknown,
  callback: (err: unknown, user: unknown, info: unknown, status: unknown) => T,
): Promise<T | undefined> {
  const layer = typeof strategy === 'string' ? strategy : (Object.create(strategy) as Strategy);
  return new Promise((resolve, reject) => {
    const middleware = passport.authenticate(
      layer as never,
      { session: false },
      (err: unknown, user: unknown, info: unknown, status: unknown) => {
        try {
          resolve(callback(err, user, info, status));
        } catch (error) {
          reject(error);
        }
      },
    ) as (req: unknown, res: unknown, next: (err?: unknown) => void) => void;
    middleware(request, response, (err?: unknown) => (err ? reject(err) : resolve(undefined)));
  });
}
