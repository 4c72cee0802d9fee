import { ConfigurationError, loadAppConfig } from '../../sample-app/src/config/app.config.js';
import {
  parseTrustProxy,
  trustProxySetting,
  type TrustProxy,
} from '../../sample-app/src/config/trust-proxy.js';

describe('TRUST_PROXY', () => {
  it.each([
    ['1', { hops: 1 }],
    ['16', { hops: 16 }],
    ['10.0.0.1', { addresses: ['10.0.0.1'] }],
    ['10.0.0.0/8, 192.168.1.7', { addresses: ['10.0.0.0/8', '192.168.1.7'] }],
    ['::1,fd00::/8', { addresses: ['::1', 'fd00::/8'] }],
    ['2001:db8::/32', { addresses: ['2001:db8::/32'] }],
    ['loopback,uniquelocal', { addresses: ['loopback', 'uniquelocal'] }],
  ])('accepts %j', (value, expected) => {
    expect(parseTrustProxy(value)).toEqual(expected);
    expect(loadAppConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it('is off when unset: the socket address is the client', () => {
    expect(loadAppConfig({}).trustProxy).toBeUndefined();
  });

  it.each([
    'true',
    'TRUE',
    'false',
    '0',
    '17',
    '-1',
    '1.5',
    'yes',
    '10.0.0.0/33',
    '::/0',
    '0.0.0.0/0',
    '10.0.0.0/',
    '10.0.0.0/x',
    'fd00::/129',
    '10.0.0.1,,10.0.0.2',
    '300.1.1.1',
    'localhost',
    'proxy.example.com',
  ])('refuses %j at start-up, naming the variable', (value) => {
    expect(typeof parseTrustProxy(value)).toBe('string');
    expect(() => loadAppConfig({ TRUST_PROXY: value })).toThrow(ConfigurationError);
    expect(() => loadAppConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY must be a hop count/);
  });

  it('says why "true" is refused', () => {
    expect(parseTrustProxy('true')).toMatch(/forged address would get a fresh throttling budget/);
  });

  it('hands both adapters a hop count as a function: the peer and hops-1 more are trusted', () => {
    const setting = trustProxySetting({ hops: 2 });
    expect(typeof setting).toBe('function');
    const trusts = setting as (address: string, hop: number) => boolean;
    expect([0, 1, 2, 3].map((hop) => trusts('203.0.113.9', hop))).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('hands both adapters an address list as a copy', () => {
    const trust: TrustProxy = { addresses: ['10.0.0.0/8'] };
    expect(trustProxySetting(trust)).toEqual(['10.0.0.0/8']);
    expect(trustProxySetting(trust)).not.toBe(trust.addresses);
  });
});
