// The end user's inbox on a herald with [auth]: a service starts the
// operation, its subject watches their inbox with their own token.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald } from '../dist/herald.js';
import {
  Scope,
  cuttingProxy,
  eventually,
  gate,
  recordWatch,
  signal,
  startHerald,
  stepService,
  userToken,
  within,
  workflow,
} from '../test-support/harness.mjs';

const SECRET = 'a-test-secret-of-at-least-32-characters';
const SERVICE = 'service-token-0123456789';

const scope = new Scope();
after(() => scope.close());

const gates = new Map();
let h, shop;

before(async () => {
  const svc = await stepService(scope, {
    '/charge': async (call) => {
      await gates.get(call.envelope.input.order)?.wait();
      return { status: 200, body: {} };
    },
  });
  const order = workflow({
    name: 'order',
    steps: [
      { name: 'reserve', label: 'Reserving your items', done: 'Items reserved' },
      { name: 'charge', label: 'Taking your payment', done: 'Payment taken' },
    ],
    notify: '[notify]\non = ["accepted", "step_done", "succeeded", "failed", "cancelled"]\nchannels = ["inbox"]',
  });
  const auth =
    `[auth]\nusers = { algorithm = "HS256", secret = "${SECRET}" }\n` +
    `tokens = [{ name = "shop", token = "${SERVICE}", role = "service" }]\n`;
  h = await startHerald(scope, { workflows: { 'order.toml': order }, shopUrl: svc.url, more: auth });
  shop = new Herald({ baseUrl: h.base, token: SERVICE });
});

const quick = { initialMs: 50, maxMs: 400 };

/** Watches `herald`'s inbox, keeping what it was told. */
function recordInbox(herald) {
  const rec = { calls: [], states: [], live: signal(), end: signal() };
  rec.stop = herald.watchInbox((inbox, change) => rec.calls.push({ inbox: structuredClone(inbox), change }), {
    onConnection(state, error) {
      rec.states.push(state);
      if (state === 'live') rec.live.resolve();
      if (state === 'refused' || state === 'not-found') rec.end.resolve({ state, error });
    },
  });
  rec.changes = () => rec.calls.filter((c) => c.change).map((c) => c.change);
  rec.latest = () => rec.calls.at(-1)?.inbox;
  after(() => rec.stop());
  return rec;
}

const increasing = (xs) => xs.every((x, i) => i === 0 || x > xs[i - 1]);

test("an end user's inbox watch sees their operation's notification rewritten as it moves, and nobody else's", { timeout: 30000 }, async () => {
  const alice = new Herald({ baseUrl: h.base, token: () => userToken(SECRET, 'alice'), reconnect: quick });
  const bob = new Herald({ baseUrl: h.base, token: userToken(SECRET, 'bob'), reconnect: quick });
  const mine = recordInbox(alice), theirs = recordInbox(bob);
  await within('both streams to open', Promise.all([mine.live.promise, theirs.live.promise]));
  assert.deepEqual(mine.calls[0], { inbox: { items: [], unread: 0 }, change: null }, 'first: the inbox as it is');

  const g = gate();
  gates.set('i-1', g);
  const { id } = await shop.start('order', { customer: 'alice', order: 'i-1' });
  const told = await eventually('the start to reach the inbox', () => mine.changes().find((c) => c.notification.operation_id === id));
  assert.equal(told.notification.trigger, 'accepted');
  assert.equal(told.notification.title, 'Your order');
  g.open();
  await eventually('the end to reach the inbox', () => mine.latest().items[0]?.status === 'succeeded');

  const changes = mine.changes();
  assert.ok(changes.length >= 3, 'accepted, a step done, succeeded');
  assert.ok(increasing(changes.map((c) => c.notification.version)), 'each change once, in order');
  assert.ok(changes.every((c) => c.notification.id === told.notification.id), 'one notification per operation');
  const last = mine.latest();
  assert.equal(last.items.length, 1, 'rewritten in place');
  assert.equal(last.items[0].level, 'success');
  assert.match(last.items[0].body, /done/);
  assert.equal(last.unread, 1);

  // Marking it read is a change too, told to every open stream (other tabs).
  const read = await alice.markRead(told.notification.id);
  assert.equal(read.unread, 0);
  await eventually('the read to reach the stream', () => mine.latest().unread === 0 && mine.latest().items[0].read);

  // Her own operation is hers to watch, with the token in a header; bob's answer is "not found".
  const hers = recordWatch(alice, id);
  assert.equal((await within('her watch to end', hers.end.promise)).state, 'ended');
  const snoop = recordWatch(bob, id);
  assert.equal((await within("bob's watch to end", snoop.end.promise)).state, 'not-found');
  assert.deepEqual(theirs.changes(), [], "bob's inbox heard nothing of alice's order");
  assert.equal((await bob.notifications()).items.length, 0);
});

test('an inbox stream cut in the middle of a change resumes after the last whole one, repeating none', { timeout: 30000 }, async () => {
  const proxy = await cuttingProxy(scope, h.port);
  const carol = new Herald({ baseUrl: proxy.base, token: userToken(SECRET, 'carol'), reconnect: quick });
  const rec = recordInbox(carol);
  await within('the stream to open', rec.live.promise);
  proxy.cutMidEvent();
  const { id } = await shop.start('order', { customer: 'carol', order: 'i-2' });
  await eventually('the end to reach the inbox', () => rec.latest().items[0]?.status === 'succeeded');

  assert.equal(proxy.state.cuts, 1, 'the stream was cut inside a change');
  assert.ok(rec.states.includes('reconnecting') && rec.states.at(-1) === 'live', `the cut was noticed and mended: ${rec.states}`);
  const versions = rec.changes().map((c) => c.notification.version);
  assert.ok(increasing(versions), `no change twice: ${versions}`);
  const stored = await carol.notifications();
  assert.deepEqual(rec.latest(), { items: stored.items, unread: stored.unread }, 'the watched inbox is the stored one');
  assert.equal(stored.items[0].operation_id, id);
});

test("a token that is not an end user's is refused for good on the inbox, with herald's problem", { timeout: 30000 }, async () => {
  const rec = recordInbox(shop);
  const end = await within('the refusal', rec.end.promise);
  assert.equal(end.state, 'refused');
  assert.equal(end.error.status, 403);
  assert.equal(end.error.type, 'urn:herald:problem:forbidden');
  assert.deepEqual(rec.calls, []);
});

test('watches stopped at once tell nothing and throw nothing', { timeout: 30000 }, async () => {
  const dave = new Herald({ baseUrl: h.base, token: userToken(SECRET, 'dave') });
  const told = [];
  dave.watchInbox(() => told.push('inbox'), { onConnection: (s) => told.push(s) })();
  dave.watchOperation('op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa', () => told.push('view'), { onConnection: (s) => told.push(s) })();
  const stopped = new AbortController();
  stopped.abort();
  dave.watchInbox(() => told.push('inbox'), { signal: stopped.signal });
  // A watch started after them has had its first read: theirs were cut short by then.
  const first = signal();
  const later = dave.watchInbox(() => first.resolve());
  await within('a later watch to read', first.promise);
  later();
  assert.deepEqual(told, []);
});
