import { ConfigurationError, loadAppConfig } from '../../sample-app/src/config/app.config.js';

describe('sample app DPoP variables', () => {
  it('are off by default', () => {
    expect(loadAppConfig({}).dpop).toEqual({ required: false, nonce: false });
  });

  it('set the module options', () => {
    expect(
      loadAppConfig({
        DPOP_REQUIRED: 'true',
        DPOP_NONCE: 'true',
        DPOP_PUBLIC_URL: 'https://api.example.com/v1',
      }).dpop,
    ).toEqual({ required: true, nonce: true, publicUrl: 'https://api.example.com/v1' });
  });

  it.each([
    ['DPOP_REQUIRED', 'yes'],
    ['DPOP_NONCE', '1'],
    ['DPOP_PUBLIC_URL', 'api.example.com'],
    ['DPOP_PUBLIC_URL', 'https://user:pw@api.example.com'],
    ['DPOP_PUBLIC_URL', 'https://api.example.com/v1?x=1'],
  ])('refuse %s=%j at start-up, naming the variable', (name, value) => {
    expect(() => loadAppConfig({ [name]: value })).toThrow(ConfigurationError);
    expect(() => loadAppConfig({ [name]: value })).toThrow(name);
  });
});
