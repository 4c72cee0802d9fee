import {
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RetryAfterException, setResponseHeader } from './http.util.js';

/**
 * On the module's routes: HTTP errors pass through as they are; anything else (a database
 * that is down, a driver error) becomes `503` with `Retry-After`, and never leaks its message.
 */
@Catch()
export class TwoFactorExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('TwoFactorAuth');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<unknown>();
    const { httpAdapter } = this.adapterHost;
    if (exception instanceof HttpException) {
      if (exception instanceof RetryAfterException) {
        setResponseHeader(response, 'Retry-After', String(exception.retryAfterSeconds));
      }
      const body = exception.getResponse();
      httpAdapter.reply(
        response,
        typeof body === 'string' ? { statusCode: exception.getStatus(), message: body } : body,
        exception.getStatus(),
      );
      return;
    }
    this.logger.error(`Authentication route failed: ${(exception as Error)?.message ?? String(exception)}`);
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
