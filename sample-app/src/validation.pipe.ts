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

/** Deepest nesting of objects and arrays a body may have; the sample's bodies are flat. */
const MAX_BODY_DEPTH = 16;

/**
 * Refuses, on both adapters and before any validation library sees it, a body that is not a
 * JSON object, is nested deeper than `MAX_BODY_DEPTH` (class-transformer recurses without
 * limit), or has a member named like a property of `Object.prototype` (`__proto__`,
 * `constructor`, `toString`, …): class-transformer drops such members, so
 * `forbidNonWhitelisted` alone would let them pass silently.
 */
export class RefuseReservedKeysPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    // No body at all is for the route to judge (POST /auth/revoke takes none).
    if (metadata.type !== 'body' || value === undefined) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BadRequestException('The request body must be an object of the documented fields');
    }
    const stack: [unknown, number][] = [[value, 1]];
    while (stack.length > 0) {
      const [node, depth] = stack.pop()!;
      if (typeof node !== 'object' || node === null) continue;
      if (depth > MAX_BODY_DEPTH)
        throw new BadRequestException('The request body is nested too deeply');
      for (const key of Object.keys(node)) {
        if (!Array.isArray(node) && Object.hasOwn(Object.prototype, key)) {
          throw new BadRequestException([`property ${key} should not exist`]);
        }
        stack.push([(node as Record<string, unknown>)[key], depth + 1]);
      }
    }
    return value;
  }
}
