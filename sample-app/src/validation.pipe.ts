import { ValidationPipe } from '@nestjs/common';

/** Unknown fields are refused, not stripped; values are never coerced. */
export function strictValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: false,
  });
}
