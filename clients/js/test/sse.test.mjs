// The SSE wire format as the HTML standard reads it, fed in pieces as a
// network hands them over. No herald needed.

import assert from 'node:assert/strict';
import test from 'node:test';

import { SseParser } from '../dist/herald.js';

/** Feeds `text` in pieces of `n` characters; every event dispatched. */
function parse(text, n = text.length, lastEventId = '') {
  const p = new SseParser(lastEventId);
  const out = [];
  for (let i = 0; i < text.length; i += n) out.push(...p.push(text.slice(i, i + n)));
  return { events: out, parser: p };
}

test('events are dispatched at the blank line with their id, whatever the pieces', () => {
  const wire = 'id: 1\ndata: {"seq":1}\n\nid: 2\ndata: {"seq":2}\n\n';
  for (const n of [1, 2, 3, 7, wire.length]) {
    const { events, parser } = parse(wire, n);
    assert.deepEqual(events, [
      { id: '1', event: 'message', data: '{"seq":1}' },
      { id: '2', event: 'message', data: '{"seq":2}' },
    ], `pieces of ${n}`);
    assert.equal(parser.lastEventId, '2');
  }
});

test('data lines join with a newline; one space after the colon is dropped, no more', () => {
  const { events } = parse('data: first\ndata:second\ndata:  third\ndata\n\n');
  assert.deepEqual(events.map((e) => e.data), ['first\nsecond\n third\n']);
});

test('CRLF, LF and CR all end lines, also when a CRLF is split between pieces', () => {
  const wire = 'id: 7\r\ndata: a\r\n\r\nid: 8\rdata: b\r\rid: 9\ndata: c\n\n';
  for (const n of [1, 2, 5, wire.length]) {
    const { events } = parse(wire, n);
    assert.deepEqual(events.map((e) => [e.id, e.data]), [['7', 'a'], ['8', 'b'], ['9', 'c']], `pieces of ${n}`);
  }
});

test('comments (keep-alives) and unknown fields dispatch nothing', () => {
  const { events, parser } = parse(':\n\n: keep-alive\n\nfoo: bar\n\ndata: x\n: inside\n\n');
  assert.deepEqual(events.map((e) => e.data), ['x']);
  assert.equal(parser.lastEventId, '');
});

test('an id without data moves the last event id without dispatching', () => {
  const { events, parser } = parse('id: 41\n\n');
  assert.deepEqual(events, []);
  assert.equal(parser.lastEventId, '41');
});

test('the id is carried to later events without one, and an id with NUL is ignored', () => {
  const { events } = parse('id: 3\ndata: a\n\ndata: b\n\nid: 4\u0000\ndata: c\n\n');
  assert.deepEqual(events.map((e) => e.id), ['3', '3', '3']);
});

test('the last event id starts from the one given, as after a reconnect', () => {
  const { events, parser } = parse('data: a\n\n', undefined, '12');
  assert.equal(events[0].id, '12');
  assert.equal(parser.lastEventId, '12');
});

test('retry takes digits only; event names the type', () => {
  const { events, parser } = parse('retry: 2500\nretry: soon\nevent: change\ndata: x\n\n');
  assert.equal(parser.retry, 2500);
  assert.deepEqual(events, [{ id: '', event: 'change', data: 'x' }]);
});

test('an event cut off before its blank line is never dispatched, and its id not taken', () => {
  const { events, parser } = parse('id: 5\ndata: {"seq":5}\n\nid: 6\ndata: {"se');
  assert.deepEqual(events.map((e) => e.id), ['5']);
  assert.equal(parser.lastEventId, '5', 'a reconnect asks for what follows 5, so 6 comes again whole');
});

test('a byte order mark at the start is skipped', () => {
  const { events } = parse('\uFEFFdata: x\n\n');
  assert.deepEqual(events.map((e) => e.data), ['x']);
});
