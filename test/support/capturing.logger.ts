import type { LoggerService } from '@nestjs/common';

/** A Nest logger that keeps every line, to search the app's log output in a test. */
export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private readonly messages: unknown[] = [];

  private keep(level: string, message: unknown, params: unknown[]): void {
    this.messages.push(message);
    this.lines.push(
      [level, message, ...params]
        .map((part) => (typeof part === 'string' ? part : JSON.stringify(part)))
        .join(' '),
    );
  }

  log(message: unknown, ...params: unknown[]): void {
    this.keep('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.keep('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.keep('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.keep('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.keep('verbose', message, params);
  }

  /** The audit events written so far, parsed. */
  auditEvents(): Record<string, unknown>[] {
    return this.messages
      .filter((m): m is string => typeof m === 'string' && m.startsWith('{"audit":true'))
      .map((json) => JSON.parse(json) as Record<string, unknown>);
  }
}
