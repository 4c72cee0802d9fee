import {
  BadRequestException,
  ValidationPipe,
  type ArgumentMetadata,
  type PipeTransform,
} from '@nestjs/common';

/** Unknown fields are refused, not stripped; values are never coerced. */
export function strictValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: false,
  });
}

/**
 * Refuses a body with a member named like a property of `Object.prototype` (`__proto__`,
 * `constructor`, `toString`, …) on both adapters. class-transformer drops such members before
 * validation, so `forbidNonWhitelisted` alone would let them pass silently.
 */
export class RefuseReservedKeysPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type === 'body' && typeof value === 'object' && value !== null) {
      for (const key of Object.keys(value)) {
        if (Object.hasOwn(Object.prototype, key))
          throw new BadRequestException([`property ${key} should not exist`]);
      }
    }
    return value;
  }
}
