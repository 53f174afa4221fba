// The engine's processes start with one malloc arena unless the user chose otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineEnv } from '../../main/base/engine-env';

test('the engine\'s environment: one malloc arena, the rest of the environment kept, and a value the user set wins', () => {
  assert.deepEqual(engineEnv({ PATH: '/bin' }), { MALLOC_ARENA_MAX: '1', PATH: '/bin' });
  assert.equal(engineEnv({ MALLOC_ARENA_MAX: '4' }).MALLOC_ARENA_MAX, '4');
});
