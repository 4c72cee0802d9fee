import { BadRequestException, type Type } from '@nestjs/common';
import { validateSync } from 'class-validator';

/**
 * Validates a request body against a DTO class before a guard uses it (guards run before
 * pipes). Only own, declared keys are copied, so unknown fields and `__proto__` tricks are
 * refused rather than stripped or merged.
 */
export function validateBody<T extends object>(
  dto: Type<T>,
  allowed: readonly string[],
  body: unknown,
): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestException('The request body must be an object of the documented fields');
  }
  const instance = new dto() as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new BadRequestException([`property ${key} should not exist`]);
    instance[key] = (body as Record<string, unknown>)[key];
  }
  const errors = validateSync(instance, {
    forbidUnknownValues: true,
    whitelist: true,
    forbidNonWhitelisted: true,
  });
  if (errors.length > 0) {
    throw new BadRequestException(errors.flatMap((e) => Object.values(e.constraints ?? {})));
  }
  return instance as T;
}
