import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { setErrorHeaders } from '../common/http.util.js';
import { TwoFactorAuthError } from '../../core/errors.js';
import { toHttpException } from './error-mapping.js';

/**
 * Installed by the module for the whole application, and catching only the module's own
 * errors: a route of the application that calls a service of the module (`AccountService`,
 * `TotpService`…) and lets its error escape answers that error's `4xx`/`503`, not a `500`.
 * Every other exception goes to the application's filters as before. An application with a
 * catch-all filter of its own registered globally sees these errors first: map them there with
 * `toHttpException()`.
 */
@Catch(TwoFactorAuthError)
export class TwoFactorAuthErrorFilter implements ExceptionFilter<TwoFactorAuthError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: TwoFactorAuthError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const exception = toHttpException(error);
    const response = host.switchToHttp().getResponse<unknown>();
    setErrorHeaders(response, exception);
    this.adapterHost.httpAdapter.reply(response, exception.getResponse(), exception.getStatus());
  }
}
