// The built file is what a page under `script-src 'self'` can load: one
// plain ES module, importing nothing, evaluating no strings. (That it is
// what tsc makes from src/ is check-dist.mjs's to say.)

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import test from 'node:test';

const built = new URL('../dist/herald.js', import.meta.url);

test('the built file imports nothing and evaluates no strings', async () => {
  const text = await readFile(built, 'utf8');
  assert.doesNotMatch(text, /^\s*import\s/m, 'no import: the page loads one file');
  assert.doesNotMatch(text, /\bimport\(/, 'no dynamic import');
  assert.doesNotMatch(text, /\beval\s*\(|new Function\s*\(|setTimeout\(\s*['"`]/, 'nothing a CSP without unsafe-eval refuses');
  assert.doesNotMatch(text, /\brequire\(|module\.exports|process\./, 'nothing of node only');
});

test('the built file exports the client', async () => {
  const mod = await import(built);
  for (const name of ['Herald', 'HeraldError', 'SseParser', 'optimistic', 'rollbackOf', 'newKey', 'isFinal', 'UNREACHABLE']) {
    assert.ok(name in mod, `exports ${name}`);
  }
  assert.match(mod.newKey(), /^[0-9a-f]{32}$/);
});
