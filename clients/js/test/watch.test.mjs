// Watching an operation on a real herald: every event once, in order, to
// the end; resuming from a given event; an operation that is not there.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, HeraldError } from '../dist/herald.js';
import { Scope, eventually, gate, recordWatch, seqs, startHerald, stepService, within, workflow } from '../test-support/harness.mjs';

const scope = new Scope();
after(() => scope.close());

const STEPS = [
  { name: 'reserve', label: 'Reserving your items', done: 'Items reserved', undo: ['Putting your items back', 'Items put back'] },
  { name: 'charge', label: 'Taking your payment', done: 'Payment taken' },
  { name: 'confirm', label: 'Sending your confirmation', done: 'Confirmation sent' },
];

// Each test's operation holds at `charge` until the test lets it go.
const gates = new Map();
let herald, h;

before(async () => {
  const shop = await stepService(scope, {
    '/charge': async (call) => {
      await gates.get(call.envelope.input.order)?.wait();
      return { status: 200, body: { charged: true } };
    },
  });
  h = await startHerald(scope, { workflows: { 'order.toml': workflow({ name: 'order', steps: STEPS }) }, shopUrl: shop.url });
  herald = new Herald({ baseUrl: h.base, reconnect: { initialMs: 50, maxMs: 500 } });
});

/** Starts an order that waits at `charge`; its gate. */
async function heldOrder(order) {
  const g = gate();
  gates.set(order, g);
  const view = await herald.start('order', { customer: 'alice', order });
  return { id: view.id, gate: g };
}

test('a watch is told the current view, then every later event once, in order, and ends with the operation', { timeout: 30000 }, async () => {
  const { id, gate } = await heldOrder('o-1');
  const rec = recordWatch(herald, id);
  await within('the stream to open', rec.live.promise);
  await eventually('the charge to be called', async () => (await herald.get(id)).steps[1].status === 'running');
  gate.open();
  const end = await within('the end', rec.end.promise);
  assert.equal(end.state, 'ended');

  const final = await herald.get(id);
  assert.equal(final.status, 'succeeded');
  assert.equal(rec.calls[0].event, null, 'the first call carries the view alone');
  const first = rec.calls[0].view;
  const delivered = rec.events().map((e) => e.seq);
  assert.ok(delivered.length > 0, 'events came live, after the first view');
  assert.deepEqual(delivered, seqs(first.last_seq + 1, final.last_seq), 'each event after the first view, once, in order');
  assert.deepEqual(rec.events(), final.timeline.slice(first.last_seq), 'the events are the timeline herald keeps');
  for (const { view, event } of rec.calls.slice(1)) assert.ok(view.last_seq >= event.seq, 'each view is at least as new as its event');
  for (const { view } of rec.calls) assert.equal(view.timeline.at(-1).seq, view.last_seq, 'a view never runs ahead of its status');
  assert.equal(rec.calls.at(-1).view.status, 'succeeded');
  assert.deepEqual(rec.states, ['live', 'ended']);
});

test('a watch from a given event gets exactly the events after it, without a first view', { timeout: 30000 }, async () => {
  const { id, gate } = await heldOrder('o-2');
  await eventually('the charge to be called', async () => (await herald.get(id)).steps[1].status === 'running');
  const midway = await herald.get(id);
  const from = 2;
  assert.ok(midway.last_seq > from, 'events after the one resumed from');
  const running = recordWatch(herald, id, { lastEventId: from });
  await within('the stream to open', running.live.promise);
  gate.open();
  await within('the end', running.end.promise);
  const final = await herald.get(id);
  assert.ok(running.calls.every((c) => c.event), 'no call without an event');
  assert.deepEqual(running.events().map((e) => e.seq), seqs(from + 1, final.last_seq));

  // Once it has ended: the rest at once, then the end; from its last event, nothing but the end.
  const ended = recordWatch(herald, id, { lastEventId: 4 });
  assert.equal((await within('the end', ended.end.promise)).state, 'ended');
  assert.deepEqual(ended.events().map((e) => e.seq), seqs(5, final.last_seq));
  const nothing = recordWatch(herald, id, { lastEventId: final.last_seq });
  assert.equal((await within('the end', nothing.end.promise)).state, 'ended');
  assert.deepEqual(nothing.calls, []);
});

test('an operation that has ended is told once, as it is, and the watch ends', { timeout: 30000 }, async () => {
  const view = await herald.start('order', { customer: 'bob', order: 'o-3' }, { wait: 10 });
  assert.equal(view.status, 'succeeded', 'Prefer: wait answered with the end');
  const rec = recordWatch(herald, view.id);
  assert.equal((await within('the end', rec.end.promise)).state, 'ended');
  assert.equal(rec.calls.length, 1);
  assert.equal(rec.calls[0].event, null);
  assert.equal(rec.calls[0].view.last_seq, view.last_seq);
  assert.deepEqual(rec.states, ['ended'], 'no stream is opened for an operation that has ended');
});

test('an unknown operation: the watch says not-found, and get throws a not-found problem', { timeout: 30000 }, async () => {
  const rec = recordWatch(herald, 'op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa');
  const end = await within('the end', rec.end.promise);
  assert.equal(end.state, 'not-found');
  assert.deepEqual(rec.calls, []);
  await assert.rejects(herald.get('op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa'), (e) => {
    assert.ok(e instanceof HeraldError);
    assert.equal(e.status, 404);
    assert.equal(e.type, 'urn:herald:problem:not-found');
    return true;
  });
});

test('stop() ends a watch: nothing more is delivered or told', { timeout: 30000 }, async () => {
  const { id, gate } = await heldOrder('o-4');
  const rec = recordWatch(herald, id);
  await within('the stream to open', rec.live.promise);
  rec.stop();
  const told = rec.calls.length;
  gate.open();
  await eventually('the operation to end', async () => (await herald.get(id)).status === 'succeeded');
  // The end went out on the stream; a watch still open would have been told by now.
  const other = recordWatch(herald, id);
  await within('another watch to end', other.end.promise);
  assert.equal(rec.calls.length, told);
  assert.deepEqual(rec.states, ['live']);
});

test('with reportLag, the lag of each event shown live is reported to herald', { timeout: 30000 }, async () => {
  const count = async () => {
    const text = await (await fetch(h.base + '/metrics')).text();
    return Number(/^herald_ui_commit_to_render_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const before = await count();
  const { id, gate } = await heldOrder('o-5');
  const rec = recordWatch(herald, id, { reportLag: true });
  await within('the stream to open', rec.live.promise);
  gate.open();
  await within('the end', rec.end.promise);
  const shown = rec.events().length;
  // Events committed as the stream opened may fall either side of it, by the clocks' error.
  await eventually('the reports to be counted', async () => (await count()) > before);
  assert.ok((await count()) <= before + shown, 'at most one sample per event shown live');
});
