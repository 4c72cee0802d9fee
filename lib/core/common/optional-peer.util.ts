/**
 * Optional peer dependencies (`@nestjs/swagger`, `@nestjs/event-emitter`, `ioredis`) are
 * imported where they are used, never at the top of a module: an application that does not
 * install one neither type-checks nor loads it.
 */

/** True when `error` says that the package `name` itself is not installed. */
export function isMissingPackage(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    typeof message === 'string' &&
    (message.includes(`'${name}'`) || message.includes(`"${name}"`))
  );
}

/**
 * The module `load()` imports, or `null` when the package `name` is not installed. Any other
 * failure (the package is there but broken) is thrown, never mistaken for its absence.
 */
export async function importOptionalPeer<T>(
  name: string,
  load: () => Promise<T>,
): Promise<T | null> {
  try {
    return await load();
  } catch (error) {
    if (isMissingPackage(error, name)) return null;
    throw error;
  }
}
