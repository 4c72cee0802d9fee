/**
 * Jest on Node < 24.9 cannot `require()` an ES module from a CommonJS one, and
 * `@nestjs/throttler` (CommonJS) requires `@nestjs/common` and `@nestjs/core` (ES modules only
 * since Nest 12). Outside Jest, Node >= 20.19 does this natively. For the tests, this
 * transformer points those two `require` calls at the very module instances the rest of the
 * test imported (put on globalThis by test/setup/nest-globals.ts), so there is one Nest.
 */
const SHARED = {
  '@nestjs/common': '__TFA_TEST_NEST_COMMON__',
  '@nestjs/core': '__TFA_TEST_NEST_CORE__',
};

module.exports = {
  process(source) {
    let code = source;
    for (const [name, global] of Object.entries(SHARED)) {
      code = code.split(`require("${name}")`).join(`globalThis.${global}`);
    }
    return { code };
  },
};
