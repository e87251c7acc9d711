// The plain requests on a real herald, and herald's refusals as
// HeraldErrors: status, stable type, title, detail.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, HeraldError, UNREACHABLE } from '../dist/herald.js';
import { Scope, startHerald, stepService, workflow } from '../test-support/harness.mjs';

const scope = new Scope();
after(() => scope.close());

let herald;

before(async () => {
  const shop = await stepService(scope);
  const steps = [{ name: 'reserve', label: 'Reserving your items', done: 'Items reserved' }];
  const h = await startHerald(scope, { workflows: { 'order.toml': workflow({ name: 'order', steps }) }, shopUrl: shop.url });
  herald = new Herald({ baseUrl: h.base + '/' });
});

/** Asserts `promise` rejects with a HeraldError of this status and type; the error. */
async function refused(promise, status, type) {
  let error;
  await assert.rejects(promise, (e) => {
    error = e;
    return true;
  });
  assert.ok(error instanceof HeraldError, `a HeraldError, not ${error}`);
  assert.equal(error.name, 'HeraldError');
  assert.equal(error.status, status);
  assert.equal(error.type, type);
  assert.ok(error.title, 'a title');
  assert.ok(error.detail, 'a detail');
  assert.equal(error.message, error.detail);
  return error;
}

test('start, get, list and cancel answer with the operation as herald keeps it', async () => {
  const started = await herald.start('order', { customer: 'alice' }, { idempotencyKey: 'k-1', wait: 10 });
  assert.equal(started.status, 'succeeded');
  assert.equal(started.subject, 'alice');
  const again = await herald.start('order', { customer: 'alice' }, { idempotencyKey: 'k-1' });
  assert.equal(again.id, started.id, 'the same key and body: the same operation');
  const got = await herald.get(started.id);
  assert.equal(got.outcome.summary, 'Your order: done. Items reserved.');
  assert.deepEqual(got.timeline.map((e) => e.seq), got.timeline.map((_, i) => i + 1));
  const list = await herald.list({ subject: 'alice', status: 'succeeded', limit: 5 });
  assert.deepEqual(list.items.map((o) => o.id), [started.id]);
  const other = await herald.start('order', { customer: 'bob' }, { subject: 'bob-by-header' });
  assert.equal(other.subject, 'bob-by-header');
});

test('problem documents become HeraldErrors with their stable type', async () => {
  await refused(herald.start('no-such-workflow', {}), 404, 'urn:herald:problem:unknown-workflow');
  await refused(herald.get('op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa'), 404, 'urn:herald:problem:not-found');
  await refused(herald.list({ limit: 0 }), 422, 'urn:herald:problem:invalid-input');

  const first = await herald.start('order', { customer: 'carol' }, { idempotencyKey: 'k-2', wait: 10 });
  const reused = await refused(herald.start('order', { customer: 'dave' }, { idempotencyKey: 'k-2' }), 422, 'urn:herald:problem:idempotency-key-reused');
  assert.equal(reused.operationId, first.id, 'the operation the key started');

  await refused(herald.cancel(first.id, 'too late'), 409, 'urn:herald:problem:conflict');
  await refused(herald.cancel(first.id, 'x'.repeat(501)), 422, 'urn:herald:problem:invalid-input');
  await refused(herald.notifications(), 403, 'urn:herald:problem:forbidden');
});

test('no answer at all is a HeraldError too: status 0, worth trying again', async () => {
  const away = new Herald({ baseUrl: 'http://127.0.0.1:9' });
  const e = await refused(away.get('op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa'), 0, UNREACHABLE);
  assert.equal(e.transient, true);
  assert.ok(e.cause, 'the network error underneath');
});

test('the token is sent as a bearer, and a function is asked before each request', async () => {
  const seen = [];
  let n = 0;
  const spy = new Herald({
    baseUrl: 'http://herald.test',
    token: async () => `t-${++n}`,
    fetch: async (url, init) => {
      seen.push([url, init.headers.authorization, init.headers['content-type']]);
      return new Response('{"marked":0,"unread":0}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
  });
  await spy.markAllRead();
  await spy.markAllRead();
  assert.deepEqual(seen, [
    ['http://herald.test/v1/me/notifications:read-all', 'Bearer t-1', 'application/json'],
    ['http://herald.test/v1/me/notifications:read-all', 'Bearer t-2', 'application/json'],
  ]);
});

test('an answer that is not a problem document still becomes a HeraldError', async () => {
  const proxy = new Herald({
    baseUrl: 'http://herald.test',
    fetch: async () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway', headers: { 'retry-after': '3' } }),
  });
  const e = await refused(proxy.get('op_x'), 502, 'about:blank');
  assert.equal(e.title, 'Bad Gateway');
  assert.equal(e.retryAfter, 3);
  assert.equal(e.transient, true);
});
