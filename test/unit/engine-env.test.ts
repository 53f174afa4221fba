// The engine's processes start with one malloc arena and glibc's thresholds at their maxima, unless the user chose otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineEnv } from '../../main/base/engine-env';

test('the engine\'s environment: one malloc arena, glibc\'s mmap and trim thresholds at 32 and 64 MB, the rest of the environment kept, and a value the user set wins', () => {
  assert.deepEqual(engineEnv({ PATH: '/bin' }), { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '67108864', PATH: '/bin' });
  const chosen = engineEnv({ MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '0' });
  assert.equal(chosen.MALLOC_ARENA_MAX, '4');
  assert.equal(chosen.MALLOC_TRIM_THRESHOLD_, '0');
  assert.equal(chosen.MALLOC_MMAP_THRESHOLD_, '33554432');
});
