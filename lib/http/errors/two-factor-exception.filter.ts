import {
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TwoFactorAuthError } from '../../core/errors.js';
import { TwoFactorAuthConfigError } from '../../core/options/two-factor-auth.options-validation.js';
import { toHttpException } from './error-mapping.js';
import { setResponseHeader, setErrorHeaders } from '../common/http.util.js';

/** Generic messages for client errors raised below Nest (body parser, adapter). */
const CLIENT_ERRORS: Record<number, [string, string]> = {
  400: ['Bad Request', 'Malformed request body'],
  413: ['Payload Too Large', 'Request body too large'],
  415: ['Unsupported Media Type', 'Unsupported content type'],
};

/**
 * On the module's routes (and, if the application wants it, globally): the core's errors
 * become their one HTTP answer; HTTP errors pass through as they are; client errors raised by the body parser or the adapter keep their 4xx
 * status with a generic message; a configuration error of the application (a `claims` hook
 * that breaks the rules) becomes `500`; anything else (a database that is down, a driver
 * error) becomes `503` with `Retry-After`. No message of a library or a driver reaches the client.
 */
@Catch()
export class TwoFactorExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('TwoFactorAuth');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(raised: unknown, host: ArgumentsHost): void {
    const exception = raised instanceof TwoFactorAuthError ? toHttpException(raised) : raised;
    const response = host.switchToHttp().getResponse<unknown>();
    const { httpAdapter } = this.adapterHost;
    if (
      exception instanceof HttpException &&
      exception.cause !== undefined &&
      exception.getStatus() < 500
    ) {
      // Raised by the adapter from a body-parser error: keep the status, drop the parser's text.
      const status = exception.getStatus();
      const [error, message] = CLIENT_ERRORS[status] ?? ['Bad Request', 'Bad request'];
      httpAdapter.reply(response, { statusCode: status, message, error }, status);
      return;
    }
    if (exception instanceof HttpException) {
      setErrorHeaders(response, exception);
      const body = exception.getResponse();
      httpAdapter.reply(
        response,
        typeof body === 'string' ? { statusCode: exception.getStatus(), message: body } : body,
        exception.getStatus(),
      );
      return;
    }
    const status =
      (exception as { status?: unknown; statusCode?: unknown } | null)?.status ??
      (exception as { statusCode?: unknown } | null)?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const [error, message] = CLIENT_ERRORS[status] ?? ['Bad Request', 'Bad request'];
      httpAdapter.reply(response, { statusCode: status, message, error }, status);
      return;
    }
    if (exception instanceof TwoFactorAuthConfigError) {
      // The application's own mistake (a `claims` hook that returns `sub`, say): retrying will
      // not help, so no 503. The log says what to fix; the client learns nothing of it.
      this.logger.error(`Request failed: ${exception.message}`);
      httpAdapter.reply(
        response,
        {
          statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
          message: 'Internal server error',
          error: 'Internal Server Error',
        },
        HttpStatus.INTERNAL_SERVER_ERROR,
      );
      return;
    }
    this.logger.error(`Request failed: ${(exception as Error)?.message ?? String(exception)}`);
    setResponseHeader(response, 'Retry-After', '1');
    httpAdapter.reply(
      response,
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        message: 'Authentication is temporarily unavailable; retry shortly',
        error: 'Service Unavailable',
      },
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}
