import { TOTP, Secret } from 'otpauth';
import { totpAt } from '../support/totp.js';

// RFC 6238 Appendix B: the seeds are ASCII "1234567890" repeated to the hash length.
const SEEDS = {
  SHA1: Buffer.from('12345678901234567890'),
  SHA256: Buffer.from('12345678901234567890123456789012'),
  SHA512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
};
const VECTORS: [number, string, keyof typeof SEEDS][] = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [2000000000, '69279037', 'SHA1'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

describe('RFC 6238 test vectors', () => {
  it.each(VECTORS)(
    'at T=%i the code is %s (%s) in the library the module uses',
    (time, code, algorithm) => {
      const generated = TOTP.generate({
        secret: new Secret({ buffer: new Uint8Array(SEEDS[algorithm]).buffer }),
        algorithm,
        digits: 8,
        period: 30,
        timestamp: time * 1000,
      });
      expect(generated).toBe(code);
      expect(
        TOTP.validate({
          token: code,
          secret: new Secret({ buffer: new Uint8Array(SEEDS[algorithm]).buffer }),
          algorithm,
          digits: 8,
          period: 30,
          timestamp: time * 1000,
          window: 0,
        }),
      ).toBe(0);
    },
  );

  it.each(VECTORS)(
    'at T=%i the code is %s (%s) in the tests own implementation',
    (time, code, algorithm) => {
      expect(totpAt(SEEDS[algorithm], Math.floor(time / 30), 8, algorithm.toLowerCase())).toBe(
        code,
      );
    },
  );
});
