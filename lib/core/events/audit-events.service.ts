import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { importOptionalPeer } from '../common/optional-peer.util.js';
import {
  TWO_FACTOR_EVENT_PREFIX,
  type TwoFactorEventMap,
  type TwoFactorEventName,
} from './two-factor.events.js';

/** What the module needs of `EventEmitter2`. */
interface EventSink {
  emit(event: string, payload: unknown): unknown;
}

/**
 * Emits the module's audit events on the application's `EventEmitter2`
 * (`EventEmitterModule.forRoot()`); without `@nestjs/event-emitter` installed, or without that
 * module imported, events are dropped. The package is an optional peer, looked up when the
 * application starts, never imported up front. A listener that throws never breaks a login.
 */
@Injectable()
export class AuditEvents implements OnModuleInit {
  private readonly logger = new Logger('TwoFactorAuth');
  private emitter: EventSink | undefined;

  constructor(private readonly moduleRef: ModuleRef) {}

  async onModuleInit(): Promise<void> {
    const events = await importOptionalPeer(
      '@nestjs/event-emitter',
      () => import('@nestjs/event-emitter'),
    );
    if (!events) return;
    try {
      this.emitter = this.moduleRef.get(events.EventEmitter2, { strict: false });
    } catch {
      // Installed, but EventEmitterModule is not imported: events are dropped.
    }
  }

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
