// A watch whose connection is cut: herald killed and started again on the
// same data and port, or the stream cut in the middle of an event. The
// watch resumes and delivers every event once, in order.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald } from '../dist/herald.js';
import {
  Scope,
  cuttingProxy,
  eventually,
  gate,
  recordWatch,
  seqs,
  startHerald,
  stepService,
  within,
  workflow,
} from '../test-support/harness.mjs';

const scope = new Scope();
after(() => scope.close());

const STEPS = [
  { name: 'reserve', label: 'Reserving your items', done: 'Items reserved' },
  { name: 'charge', label: 'Taking your payment', done: 'Payment taken' },
  { name: 'confirm', label: 'Sending your confirmation', done: 'Confirmation sent' },
];

const gates = new Map();
let h;

before(async () => {
  const shop = await stepService(scope, {
    '/charge': async (call) => {
      await gates.get(call.envelope.input.order)?.wait();
      return { status: 200, body: {} };
    },
    '/confirm': async (call) => {
      await gates.get(call.envelope.input.order + '/confirm')?.wait();
      return { status: 200, body: {} };
    },
  });
  h = await startHerald(scope, { workflows: { 'order.toml': workflow({ name: 'order', steps: STEPS }) }, shopUrl: shop.url });
});

/** The delivered events are the operation's whole timeline after the first view: each once, in order. */
async function assertEveryEventOnce(herald, rec, id) {
  const final = await herald.get(id);
  assert.equal(final.status, 'succeeded');
  const first = rec.calls[0];
  assert.equal(first.event, null);
  assert.deepEqual(rec.events().map((e) => e.seq), seqs(first.view.last_seq + 1, final.last_seq));
  assert.deepEqual(rec.events(), final.timeline.slice(first.view.last_seq));
}

test('a watch resumes after herald is killed and restarted, missing no event and repeating none', { timeout: 60000 }, async () => {
  const herald = new Herald({ baseUrl: h.base, reconnect: { initialMs: 50, maxMs: 400 } });
  const charge = gate(), confirm = gate();
  gates.set('k-1', charge);
  gates.set('k-1/confirm', confirm);
  const { id } = await herald.start('order', { customer: 'alice', order: 'k-1' });
  const rec = recordWatch(herald, id);
  await within('the stream to open', rec.live.promise);
  await eventually('the charge to be called', async () => (await herald.get(id)).steps[1].status === 'running');

  await h.kill();
  await eventually('the watch to notice', () => rec.states.includes('reconnecting'));
  await h.spawn(); // same port, same data
  charge.open();
  // Held at `confirm`: the watch must open the stream again to hear the rest.
  await eventually('the stream to open again', () => rec.states.lastIndexOf('live') > rec.states.indexOf('reconnecting'));
  const resumedAt = rec.calls.length;
  confirm.open();
  assert.equal((await within('the end', rec.end.promise, 30000)).state, 'ended');

  assert.ok(rec.calls.length > resumedAt, 'events came on the resumed stream');
  await assertEveryEventOnce(herald, rec, id);
  assert.equal(rec.states[0], 'live');
  assert.equal(rec.states.at(-1), 'ended');
});

test('a stream cut in the middle of an event is resumed from the event before it', { timeout: 60000 }, async () => {
  const proxy = await cuttingProxy(scope, h.port);
  const herald = new Herald({ baseUrl: proxy.base, reconnect: { initialMs: 50, maxMs: 400 } });
  const g = gate();
  gates.set('c-1', g);
  const { id } = await herald.start('order', { customer: 'alice', order: 'c-1' });
  const rec = recordWatch(herald, id);
  await within('the stream to open', rec.live.promise);
  await eventually('the charge to be called', async () => (await herald.get(id)).steps[1].status === 'running');

  proxy.cutMidEvent();
  g.open();
  assert.equal((await within('the end', rec.end.promise, 30000)).state, 'ended');

  assert.equal(proxy.state.cuts, 1, 'the stream was cut inside an event');
  assert.ok(rec.states.includes('reconnecting'), `the cut was noticed: ${rec.states}`);
  await assertEveryEventOnce(herald, rec, id);
});
