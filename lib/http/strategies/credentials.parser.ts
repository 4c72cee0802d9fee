import { BadRequestException } from '@nestjs/common';
import type { LoginCredentials } from '../../flows/login/login.service.js';
import { isEmptyBody, parseBasicCredentials } from '../common/http-basic.util.js';
import { validateBody } from '../common/validate-body.util.js';
import { TokenRequestDto } from '../dto/token-request.dto.js';

/** The request parts the credentials strategy reads; Express and Fastify requests both fit. */
export interface CredentialsRequest {
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

const TOKEN_FIELDS = ['username', 'password', 'secretKey', 'otp', 'recoveryCode'] as const;

function header(req: CredentialsRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? undefined : value;
}

/**
 * Reads the login factors from the JSON body, or from `Authorization: Basic` plus the
 * `X-Secret-Key` (or `X-OTP`, `X-Recovery-Code`) header. Malformed input is a 400; a missing password or second factor is
 * not (it is a failed login, counted toward lockout).
 */
export function parseCredentials(req: CredentialsRequest): LoginCredentials {
  const authorization = header(req, 'authorization');
  if (authorization !== undefined && /^basic\b/i.test(authorization)) {
    const basic = parseBasicCredentials(authorization);
    if (!basic) throw new BadRequestException('Malformed Basic credentials');
    if (!isEmptyBody(req.body)) {
      throw new BadRequestException(
        'Send credentials either in the body or as Basic credentials, not both',
      );
    }
    const secretKey = header(req, 'x-secret-key');
    const otp = header(req, 'x-otp');
    const recoveryCode = header(req, 'x-recovery-code');
    return validateBody(TokenRequestDto, TOKEN_FIELDS, {
      username: basic.user,
      password: basic.password,
      ...(secretKey !== undefined ? { secretKey } : {}),
      ...(otp !== undefined ? { otp } : {}),
      ...(recoveryCode !== undefined ? { recoveryCode } : {}),
    });
  }
  return validateBody(TokenRequestDto, TOKEN_FIELDS, req.body);
}
