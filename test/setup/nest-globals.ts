// See esm-from-cjs.transformer.cjs: the CommonJS @nestjs/throttler reads these.
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';

Object.assign(globalThis, { __TFA_TEST_NEST_COMMON__: common, __TFA_TEST_NEST_CORE__: core });
