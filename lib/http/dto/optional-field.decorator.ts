import { ValidateIf } from 'class-validator';

/**
 * Like `@IsOptional()`, but only a missing field is optional: an explicit `null` is still
 * validated (and refused by `@IsString()`), so `{"password": null}` is a 400, not a login.
 */
export const OptionalField = (): PropertyDecorator =>
  ValidateIf((_object, value) => value !== undefined);
