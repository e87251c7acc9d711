// What herald says up front and asks when requests collide, through the
// client: an operation's expectation; an operation awaiting its user's
// choice (`on_conflict = "ask"`), `resolve` with either choice, the default
// when time runs out, and the optimistic layer rolling a kept-out request
// back.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, HeraldError, optimistic } from '../dist/herald.js';
import { Scope, eventually, gate, recordWatch, startHerald, stepService, within, workflow } from '../test-support/harness.mjs';

const scope = new Scope();
after(() => scope.close());

const STEPS = [
  { name: 'reserve', label: 'Reserving your items', done: 'Items reserved', undo: ['Putting your items back', 'Items put back'] },
  { name: 'charge', label: 'Taking your payment', done: 'Payment taken' },
];
const ASK = 'expected_within = "20s"\ndeadline = "10m"\nconcurrency = { key = "subject", on_conflict = "ask"';

// Each order holds at `charge` until its test lets it go.
const gates = new Map();
let herald, h;

before(async () => {
  const shop = await stepService(scope, {
    '/charge': async (call) => {
      await gates.get(call.envelope.input.order)?.wait();
      return { status: 200, body: { charged: true } };
    },
  });
  const workflows = {
    'order.toml': workflow({ name: 'order', steps: STEPS, head: `${ASK} }` }),
    // Nobody chooses in time: herald keeps the running one.
    'quick.toml': workflow({ name: 'quick', steps: STEPS, head: `${ASK}, decide_within = "300ms", default = "keep" }` }),
  };
  h = await startHerald(scope, { workflows, shopUrl: shop.url });
  herald = new Herald({ baseUrl: h.base, reconnect: { initialMs: 50, maxMs: 400 } });
});

/** Starts an order for `customer` that waits at `charge`; its view and gate. */
async function heldOrder(workflow, customer, order) {
  const g = gate();
  gates.set(order, g);
  const view = await herald.start(workflow, { customer, order });
  return { view, gate: g };
}

/** Waits until `id`'s charge is under way: the order holds the customer's key. */
const charging = (id) => eventually('the charge to be under way', async () => (await herald.get(id)).steps[1].status === 'running');

/** Waits until `id` has ended; its final view. */
const final = (id) => eventually(`${id} to end`, async () => {
  const v = await herald.get(id);
  return ['succeeded', 'failed', 'cancelled'].includes(v.status) && v;
});

test('an operation says up front when it is expected, and what its deadline would do', async () => {
  const { view, gate } = await heldOrder('order', 'erin', 'e-1');
  gate.open();
  const e = view.expectation;
  assert.equal(e.within_ms, 20000);
  assert.equal(e.basis, 'configured');
  assert.equal(e.text, 'Usually takes under 20 seconds');
  assert.match(e.if_late, /^If it is not done by its deadline, it is stopped/);
  assert.equal(Date.parse(view.expected_by) - Date.parse(view.created_at), 20000);
  assert.equal(Date.parse(view.deadline_at) - Date.parse(view.created_at), 600000);
  await final(view.id);
});

test('a request that collides awaits its user\'s choice; keep cancels it, and a second choice is refused', { timeout: 30000 }, async () => {
  const first = await heldOrder('order', 'alice', 'k-1');
  await charging(first.view.id);
  const second = await herald.start('order', { customer: 'alice', order: 'k-2' });
  assert.equal(second.status, 'awaiting_decision');
  assert.equal(second.decision.with, first.view.id);
  assert.equal(second.decision.default, 'keep');
  assert.ok(Date.parse(second.decision.due_at) > Date.now(), 'time is left to choose');
  const asked = second.timeline.find((e) => e.type === 'decision_needed');
  assert.equal(asked.with, first.view.id);

  const rec = recordWatch(herald, second.id);
  await within('the stream to open', rec.live.promise);
  const chosen = await herald.resolve(second.id, 'keep');
  assert.equal(chosen.id, second.id);
  assert.equal((await within('the end', rec.end.promise)).state, 'ended');
  const decided = rec.events().find((e) => e.type === 'decided');
  assert.deepEqual([decided.choice, decided.by_default], ['keep', false]);
  assert.equal((await herald.get(second.id)).status, 'cancelled');

  await assert.rejects(herald.resolve(second.id, 'replace'), (e) => e instanceof HeraldError && e.status === 409 && e.type === 'urn:herald:problem:conflict');
  first.gate.open();
  assert.equal((await final(first.view.id)).status, 'succeeded', 'the kept one goes on');
});

test('replace undoes the running one, then runs the new one', { timeout: 30000 }, async () => {
  const first = await heldOrder('order', 'bob', 'r-1');
  await charging(first.view.id);
  const second = await herald.start('order', { customer: 'bob', order: 'r-2' });
  assert.equal(second.status, 'awaiting_decision');
  await herald.resolve(second.id, 'replace');
  first.gate.open();
  const old = await final(first.view.id);
  assert.equal(old.status, 'cancelled');
  assert.ok(old.timeline.some((e) => e.type === 'superseded'), 'its user is told why');
  assert.equal((await final(second.id)).status, 'succeeded');
});

test('when time runs out the default is applied, and said to be the default', { timeout: 30000 }, async () => {
  const first = await heldOrder('quick', 'carol', 'd-1');
  await charging(first.view.id);
  const second = await herald.start('quick', { customer: 'carol', order: 'd-2' });
  const ended = await final(second.id);
  first.gate.open();
  assert.equal(ended.status, 'cancelled');
  const decided = ended.timeline.find((e) => e.type === 'decided');
  assert.deepEqual([decided.choice, decided.by_default], ['keep', true]);
  assert.match(decided.message, /\(the default\)/);
  await assert.rejects(herald.resolve(second.id, 'replace'), (e) => e.status === 409);
  await final(first.view.id);
});

test('an optimistic request kept out is rolled back saying why, and its watch reports lag', { timeout: 30000 }, async () => {
  const lagCount = async () => {
    const text = await (await fetch(h.base + '/metrics')).text();
    return Number(/^herald_ui_commit_to_render_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const lagBefore = await lagCount();
  const first = await heldOrder('order', 'dana', 'o-1');
  await charging(first.view.id);
  // Chosen once the stream is live: only events shown live count as lag.
  let asked = null, waiting = null, live = false;
  const choose = () => {
    if (waiting && live && !asked) asked = herald.resolve(waiting, 'keep');
  };
  let rolledBack = null;
  const settled = await within('the outcome', optimistic(herald, {
    label: 'Your order',
    reportLag: true,
    apply() {},
    start: (key) => herald.start('order', { customer: 'dana', order: 'o-2' }, { idempotencyKey: key }),
    onUpdate(view) {
      if (view.status === 'awaiting_decision') waiting = view.id;
      choose();
    },
    onConnection(state) {
      live = state === 'live';
      choose();
    },
    confirm() {
      assert.fail('a request kept out is never confirmed');
    },
    rollback(r) {
      rolledBack = r;
    },
  }));
  await asked;
  assert.equal(settled.status, 'cancelled');
  assert.equal(rolledBack.status, 'cancelled');
  assert.match(rolledBack.reason, /kept the earlier request/);
  assert.deepEqual(rolledBack.undone, [], 'it never ran: nothing to undo');
  first.gate.open();
  await final(first.view.id);
  await eventually('the lag reports to be counted', async () => (await lagCount()) > lagBefore);
});
