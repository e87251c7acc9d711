// The optimistic layer on a real herald: a change shown at once, then
// confirmed, or rolled back with herald's reason and what it undid.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, optimistic } from '../dist/herald.js';
import { Scope, eventually, gate, startHerald, stepService, within, workflow } from '../test-support/harness.mjs';

const scope = new Scope();
after(() => scope.close());

const gates = new Map();
let herald, shop;

before(async () => {
  shop = await stepService(scope, {
    '/charge': async (call) => {
      const { card, order } = call.envelope.input;
      await gates.get(order)?.wait();
      if (card === 'declined') {
        return { status: 402, body: { type: 'https://shop.example/declined', title: 'Declined', status: 402, detail: 'Your card was declined.' } };
      }
      return { status: 200, body: { charged: true } };
    },
  });
  const order = workflow({
    name: 'order',
    steps: [
      { name: 'reserve', label: 'Reserving your items', done: 'Items reserved', undo: ['Putting your items back', 'Items put back'] },
      { name: 'charge', label: 'Taking your payment', done: 'Payment taken', undo: ['Refunding your payment', 'Payment refunded'] },
      { name: 'confirm', label: 'Sending your confirmation', done: 'Confirmation sent' },
    ],
  });
  const h = await startHerald(scope, { workflows: { 'order.toml': order }, shopUrl: shop.url });
  herald = new Herald({ baseUrl: h.base, reconnect: { initialMs: 50, maxMs: 400 } });
});

/** A page's list of orders, and what the layer did to it, in order. */
function page() {
  const p = { orders: new Map(), log: [] };
  p.change = (order, input, more = {}) => ({
    label: 'Your order',
    apply() {
      p.log.push('apply');
      p.orders.set(order, { pending: true });
    },
    start(key) {
      p.log.push('start');
      return herald.start('order', { customer: 'alice', order, ...input }, { idempotencyKey: key });
    },
    confirm(view, announcement) {
      p.log.push('confirm');
      p.orders.set(order, { pending: false, id: view.id, announcement });
    },
    rollback(r) {
      p.log.push('rollback');
      p.orders.delete(order);
      p.rolledBack = r;
    },
    ...more,
  });
  return p;
}

test('a declined payment rolls the order back with herald\'s reason and the reservation it undid', { timeout: 30000 }, async () => {
  const p = page();
  const g = gate();
  gates.set('d-1', g);
  const settling = optimistic(herald, p.change('d-1', { card: 'declined' }));
  assert.deepEqual(p.orders.get('d-1'), { pending: true }, 'shown at once, pending, before herald answers');
  assert.deepEqual(p.log, ['apply', 'start']);
  g.open();
  const settled = await within('the outcome', settling);

  assert.deepEqual(p.log, ['apply', 'start', 'rollback'], 'rolled back once, never confirmed');
  assert.equal(p.orders.has('d-1'), false);
  const r = p.rolledBack;
  assert.equal(r.status, 'failed');
  assert.equal(r.reason, r.view.outcome.summary, "the reason is herald's own sentence");
  assert.match(r.reason, /Your card was declined/);
  assert.deepEqual(r.undone, [{ step: 'reserve', label: 'Items reserved', undoneLabel: 'Items put back' }]);
  assert.deepEqual(r.notUndone, []);
  assert.equal(r.announcement, r.reason);
  assert.deepEqual(settled, { status: 'failed', announcement: r.announcement, view: r.view, rollback: r });
  assert.ok(shop.calls.some((c) => c.path === '/reserve/undo' && c.envelope.input.order === 'd-1'), 'the compensation ran');
});

test('an order that goes through is confirmed: the pending mark goes, with an announcement', { timeout: 30000 }, async () => {
  const p = page();
  const progress = [];
  const settled = await within('the outcome', optimistic(herald, p.change('s-1', { card: 'good' }, { onUpdate: (v, e) => progress.push(e && e.type) })));
  assert.deepEqual(p.log, ['apply', 'start', 'confirm']);
  assert.equal(settled.status, 'succeeded');
  assert.equal(settled.rollback, null);
  assert.equal(settled.announcement, settled.view.outcome.summary);
  assert.match(settled.announcement, /done/);
  assert.deepEqual(p.orders.get('s-1'), { pending: false, id: settled.view.id, announcement: settled.announcement });
  if (progress.length) assert.equal(progress.at(-1), 'succeeded', 'progress was told up to the end');
});

test('a cancelled order is rolled back, saying why and what was undone', { timeout: 30000 }, async () => {
  const p = page();
  const g = gate();
  gates.set('x-1', g);
  let id;
  const settling = optimistic(herald, p.change('x-1', { card: 'good' }, { onUpdate: (v) => (id = v.id) }));
  await eventually('the payment to be under way', async () => id && (await herald.get(id)).steps[1].status === 'running');
  await herald.cancel(id, 'changed my mind');
  g.open();
  const settled = await within('the outcome', settling);
  assert.equal(settled.status, 'cancelled');
  assert.deepEqual(p.log, ['apply', 'start', 'rollback']);
  assert.match(p.rolledBack.reason, /changed my mind/);
  assert.ok(p.rolledBack.undone.some((u) => u.step === 'reserve'), 'the reservation was undone');
});

test('a start herald refuses is rolled back at once, with its problem', { timeout: 30000 }, async () => {
  const p = page();
  const change = p.change('r-1', {}, {
    start(key) {
      p.log.push('start');
      return herald.start('no-such-workflow', {}, { idempotencyKey: key });
    },
  });
  const settled = await within('the outcome', optimistic(herald, change));
  assert.deepEqual(p.log, ['apply', 'start', 'rollback'], 'one try: a refusal is not retried');
  const r = p.rolledBack;
  assert.equal(r.status, 'refused');
  assert.equal(r.error.type, 'urn:herald:problem:unknown-workflow');
  assert.equal(r.reason, r.error.detail);
  assert.deepEqual(r.undone, []);
  assert.match(settled.announcement, /^Your order was not done: There is no workflow named/);
});

test('a start herald cannot be reached is tried again with the same key, then rolled back', { timeout: 30000 }, async () => {
  const away = new Herald({ baseUrl: 'http://127.0.0.1:9' });
  const p = page();
  const keys = [];
  const change = p.change('u-1', {}, {
    attempts: 2,
    start(key) {
      keys.push(key);
      return away.start('order', {}, { idempotencyKey: key });
    },
  });
  const settled = await within('the outcome', optimistic(herald, change));
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], 'the same idempotency key each time');
  assert.equal(settled.status, 'refused');
  assert.equal(p.rolledBack.error.status, 0);
});

test('a change whose watch is stopped stays pending, and its promise says so', { timeout: 30000 }, async () => {
  const p = page();
  const g = gate();
  gates.set('a-1', g);
  const stop = new AbortController();
  let id;
  const settling = optimistic(herald, p.change('a-1', { card: 'good' }, { signal: stop.signal, onUpdate: (v) => (id = v.id) }));
  await eventually('the payment to be under way', async () => id && (await herald.get(id)).steps[1].status === 'running');
  stop.abort();
  await assert.rejects(settling, { name: 'AbortError' });
  g.open();
  await eventually('the order to go through', async () => (await herald.get(id)).status === 'succeeded');
  assert.deepEqual(p.log, ['apply', 'start'], 'neither confirmed nor rolled back');
  assert.deepEqual(p.orders.get('a-1'), { pending: true });
});

test('a change without a rollback is refused before anything is shown', async () => {
  const p = page();
  const { rollback: _, ...change } = p.change('n-1', {});
  await assert.rejects(optimistic(herald, change), TypeError);
  assert.deepEqual(p.log, []);
});
