import { Injectable, Logger, Optional } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import {
  TWO_FACTOR_EVENT_PREFIX,
  type TwoFactorEventMap,
  type TwoFactorEventName,
} from './two-factor.events.js';

/**
 * Emits the module's audit events on the application's `EventEmitter2`
 * (`EventEmitterModule.forRoot()`); without that module imported, events are dropped. A listener that throws
 * never breaks a login.
 */
@Injectable()
export class AuditEvents {
  private readonly logger = new Logger('TwoFactorAuth');

  constructor(@Optional() private readonly emitter?: EventEmitter2) {}

  emit<K extends TwoFactorEventName>(name: K, payload: TwoFactorEventMap[K]): void {
    if (!this.emitter) return;
    try {
      this.emitter.emit(TWO_FACTOR_EVENT_PREFIX + name, {
        name,
        at: new Date().toISOString(),
        ...payload,
      });
    } catch (error) {
      this.logger.warn(`An audit event listener failed: ${(error as Error).message}`);
    }
  }
}
