import { InvalidDpopProofError } from '../../core/errors.js';
import { dpopTarget } from './dpop-request.util.js';

describe('dpopTarget', () => {
  const request = (host: string, url = '/me?x=1') => ({
    method: 'GET',
    headers: { host },
    protocol: 'http',
    host,
    originalUrl: url,
  });

  it('is the scheme, host and path the adapter reports, without the query', () => {
    expect(dpopTarget(request('api.example.com:8443'), undefined)).toEqual({
      method: 'GET',
      url: 'http://api.example.com:8443/me',
    });
    expect(dpopTarget(request('[::1]:3000'), undefined).url).toBe('http://[::1]:3000/me');
  });

  it('is the public URL followed by the path when one is configured, whatever Host says', () => {
    expect(dpopTarget(request('evil.example/x#'), 'https://api.example.com/v1').url).toBe(
      'https://api.example.com/v1/me',
    );
  });

  it.each([
    'api.example.com/admin#',
    'api.example.com?',
    'api.example.com\\admin#',
    'user@api.example.com',
    '',
    'api.example.com:99999999',
  ])('refuses a host that is not just a host and port: %j', (host) => {
    expect(() => dpopTarget(request(host), undefined)).toThrow(InvalidDpopProofError);
  });

  it.each(['http://other.example/me', 'me', '/a\\b'])('refuses the request target %j', (url) => {
    expect(() => dpopTarget(request('api.example.com', url), undefined)).toThrow(
      InvalidDpopProofError,
    );
  });
});
