import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';

/**
 * Writes the module's audit events as one JSON line each. The events carry ids and reasons
 * only, never a password, key, code or token, so the log is safe to ship.
 */
@Injectable()
export class AuditLogListener {
  private readonly logger = new Logger('Audit');

  @OnEvent('two-factor.**')
  write(event: Record<string, unknown>): void {
    this.logger.log(JSON.stringify({ audit: true, ...event }));
  }
}
