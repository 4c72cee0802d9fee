import { BadRequestException } from '@nestjs/common';
import type { LoginCredentials } from '../accounts/login.service.js';
import { validateBody } from '../common/validate-body.util.js';
import { TokenRequestDto } from '../tokens/dto/token-request.dto.js';

/** The request parts the credentials strategy reads; Express and Fastify requests both fit. */
export interface CredentialsRequest {
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

const TOKEN_FIELDS = ['username', 'password', 'secretKey', 'otp', 'recoveryCode'] as const;
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;

function header(req: CredentialsRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? undefined : value;
}

function isEmptyBody(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    body === '' ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
  );
}

/**
 * Reads the login factors from the JSON body, or from `Authorization: Basic` plus the
 * `X-Secret-Key` (or `X-OTP`, `X-Recovery-Code`) header. Malformed input is a 400; a missing password or second factor is
 * not (it is a failed login, counted toward lockout).
 */
export function parseCredentials(req: CredentialsRequest): LoginCredentials {
  const authorization = header(req, 'authorization');
  if (authorization !== undefined && /^basic\b/i.test(authorization)) {
    const match = BASIC.exec(authorization);
    const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (!match || colon < 1) throw new BadRequestException('Malformed Basic credentials');
    if (!isEmptyBody(req.body)) {
      throw new BadRequestException(
        'Send credentials either in the body or as Basic credentials, not both',
      );
    }
    const secretKey = header(req, 'x-secret-key');
    const otp = header(req, 'x-otp');
    const recoveryCode = header(req, 'x-recovery-code');
    return validateBody(TokenRequestDto, TOKEN_FIELDS, {
      username: decoded.slice(0, colon),
      password: decoded.slice(colon + 1),
      ...(secretKey !== undefined ? { secretKey } : {}),
      ...(otp !== undefined ? { otp } : {}),
      ...(recoveryCode !== undefined ? { recoveryCode } : {}),
    });
  }
  return validateBody(TokenRequestDto, TOKEN_FIELDS, req.body);
}
