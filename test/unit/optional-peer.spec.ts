import { importOptionalPeer, isMissingPackage } from '../../lib/core/common/optional-peer.util.js';

describe('optional peers', () => {
  const absent = 'nestjs-rest-2fa-no-such-package';

  it('answers null when the package is not installed', async () => {
    const specifier: string = absent;
    await expect(importOptionalPeer(absent, () => import(specifier))).resolves.toBeNull();
  });

  it('loads the package when it is installed', async () => {
    const loaded = await importOptionalPeer('ioredis', () => import('ioredis'));
    expect(typeof loaded?.Redis).toBe('function');
  });

  it('never mistakes a broken installation, or another missing package, for an absent one', async () => {
    const broken = Object.assign(new Error('Unexpected token'), { code: 'ERR_INVALID_ARG' });
    await expect(importOptionalPeer('ioredis', () => Promise.reject(broken))).rejects.toBe(broken);
    const transitive = Object.assign(new Error("Cannot find package 'cluster-key-slot'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    expect(isMissingPackage(transitive, 'ioredis')).toBe(false);
    await expect(importOptionalPeer('ioredis', () => Promise.reject(transitive))).rejects.toBe(
      transitive,
    );
  });
});
