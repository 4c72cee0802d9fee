import { ConsoleLogger, type ConsoleLoggerOptions, type LogLevel } from '@nestjs/common';

/** Shorter values are not masked: they would mask ordinary words in every line. */
const MIN_SECRET_LENGTH = 4;

const MASK = '[secret]';

/**
 * The secret values of the environment: the pepper, every TOTP encryption key, every
 * introspection client secret and the password inside DATABASE_URL and REDIS_URL (as written
 * and percent-decoded). Read from the raw environment, so that a value the configuration
 * refused is masked too. Longest first, so a whole value is masked before a part of it.
 */
export function secretValues(env: Record<string, string | undefined>): string[] {
  const secrets = new Set<string>();
  const add = (value: string | undefined) => {
    const trimmed = value?.trim();
    if (trimmed && trimmed.length >= MIN_SECRET_LENGTH) secrets.add(trimmed);
  };
  add(env.SECRET_KEY_PEPPER);
  for (const name of ['TOTP_ENCRYPTION_KEYS', 'INTROSPECTION_CLIENTS']) {
    add(env[name]);
    for (const pair of env[name]?.split(',') ?? []) add(pair.slice(pair.indexOf(':') + 1));
  }
  for (const name of ['DATABASE_URL', 'REDIS_URL']) {
    const password = urlPassword(env[name]);
    add(password);
    add(decoded(password));
  }
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** The password of `scheme://user:password@host…`, found without a URL parser (it may not parse). */
function urlPassword(url: string | undefined): string | undefined {
  const start = url?.indexOf('://') ?? -1;
  if (!url || start === -1) return undefined;
  const rest = url.slice(start + 3);
  const userInfo = rest.slice(0, Math.max(0, rest.lastIndexOf('@')));
  const colon = userInfo.indexOf(':');
  return colon === -1 ? undefined : userInfo.slice(colon + 1);
}

function decoded(value: string | undefined): string | undefined {
  try {
    return value === undefined ? undefined : decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** `text` with every secret of `secrets` replaced by `[secret]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let redacted = text;
  for (const secret of secrets) redacted = redacted.split(secret).join(MASK);
  return redacted;
}

/**
 * Nest's console logger, masking the environment's secrets in every line and stack trace it
 * prints. The app's own messages never hold a secret; this catches what libraries put in
 * theirs (a driver quoting a connection URL, an error object Nest prints whole at start-up).
 */
export class SecretRedactingLogger extends ConsoleLogger {
  constructor(
    private readonly secrets: readonly string[],
    options: ConsoleLoggerOptions & { logLevels: LogLevel[] },
  ) {
    super(options);
  }

  protected override formatMessage(
    logLevel: LogLevel,
    message: unknown,
    pidMessage: string,
    formattedLogLevel: string,
    contextMessage: string,
    timestampDiff: string,
    params?: Record<string, unknown>,
  ): string {
    const line = super.formatMessage(
      logLevel,
      message,
      pidMessage,
      formattedLogLevel,
      contextMessage,
      timestampDiff,
      params,
    );
    return redactSecrets(line, this.secrets);
  }

  /** `stack` is undefined when an error is logged without one, whatever the type says. */
  protected override printStackTrace(stack: string | undefined): void {
    if (stack) super.printStackTrace(redactSecrets(stack, this.secrets));
  }
}
