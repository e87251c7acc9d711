// What the tests share: a real herald process on a config of the test's
// own, a tiny step service for it to call, a TCP proxy that can cut a
// connection mid-stream, end users' tokens, and waiting on a condition
// with a deadline. Not under test/: node's runner would take every file
// there for a test file.
//
// Everything a test starts is registered with a Scope and ended by
// `scope.close()` (the test files call it in `after`), whether the test
// passed or failed; a process still alive when node exits is killed then.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** The herald binary under test: `HERALD_BIN`. */
export function heraldBin() {
  const bin = process.env.HERALD_BIN;
  if (!bin) throw new Error('set HERALD_BIN to the herald binary to test against (e.g. target/debug/herald)');
  return bin;
}

/** What a test started, ended in reverse order by `close()`. */
export class Scope {
  #closers = [];
  add(close) {
    this.#closers.push(close);
  }
  async close() {
    for (const close of this.#closers.reverse()) {
      try {
        await close();
      } catch (e) {
        console.error('cleaning up:', e);
      }
    }
    this.#closers = [];
  }
}

/**
 * Waits until `check()` returns something truthy (or resolves to it), and
 * returns it; fails with `what` and the last error when `ms` pass first.
 */
export async function eventually(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise with its resolve outside, for callbacks to settle. */
export function signal() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** `promise`, or a failure naming `what` after `ms`. */
export function within(what, promise, ms = 15000) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

/* ---------------------------------------------------------------- herald */

/**
 * A workflow file: steps run in order on service `shop`, each at
 * `/<name>`, undone at `/<name>/undo` unless `undo: false`; `head` is
 * more of the workflow's own keys (`expected_within`, `concurrency`…).
 */
export function workflow({ name, label = 'Your order', subject = '/customer', steps, head = '', notify = '' }) {
  let text = `name = "${name}"\nlabel = "${label}"\nsubject = "${subject}"\n${head}\n${notify}\n`;
  for (const s of steps) {
    text +=
      `[[steps]]\nname = "${s.name}"\nlabel = "${s.label}"\ndone_label = "${s.done}"\n` +
      `call = { service = "shop", method = "POST", path = "/${s.name}" }\n` +
      `retry = { attempts = 2, initial = "50ms", max = "100ms" }\ntimeout = "5s"\n`;
    if (s.undo) {
      text += `compensate = { service = "shop", method = "POST", path = "/${s.name}/undo", label = "${s.undo[0]}", done_label = "${s.undo[1]}" }\n`;
    }
  }
  return text;
}

/** An end user's JWT (HS256) for `sub`, valid ten minutes. */
export function userToken(secret, sub) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/**
 * `herald serve` on a config of its own in a temporary directory: the
 * workflows given (file name → text), service `shop` at `shopUrl`, and
 * `more` TOML appended. Resolves once it answers `/readyz`.
 */
export async function startHerald(scope, { workflows, shopUrl, more = '' }) {
  const dir = await mkdtemp(join(tmpdir(), 'herald-js-'));
  scope.add(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'workflows'));
  for (const [file, text] of Object.entries(workflows)) await writeFile(join(dir, 'workflows', file), text);
  const config = join(dir, 'herald.toml');
  await writeFile(
    config,
    `listen = "127.0.0.1:0"\ndata_dir = ${JSON.stringify(join(dir, 'data'))}\nworkflows = ${JSON.stringify(join(dir, 'workflows'))}\n` +
      `[engine]\npoll_interval = "100ms"\nshutdown_grace = "1s"\n[services.shop]\ninstances = ["${shopUrl}"]\n${more}`,
  );
  const h = new HeraldProcess(config);
  scope.add(() => h.kill());
  await h.spawn();
  return h;
}

export class HeraldProcess {
  constructor(config) {
    this.config = config;
    this.port = 0;
    this.log = [];
    this.child = null;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (again on the same port and data once it has a port), and waits until it is ready. */
  async spawn() {
    const args = ['--log-format', 'json', 'serve', '--config', this.config];
    if (this.port) args.push('--listen', `127.0.0.1:${this.port}`);
    // Our own HERALD_ variables (HERALD_BIN) would be read as configuration.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
    const child = spawn(heraldBin(), args, { env: { ...env, RUST_LOG: 'info,tower_http=warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    children.add(child);
    const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, sig })));
    this.exited = exited;
    exited.then(() => children.delete(child));
    const listening = new Promise((resolve) => {
      createInterface({ input: child.stderr }).on('line', (line) => {
        this.log.push(line);
        if (this.log.length > 200) this.log.shift();
        try {
          const l = JSON.parse(line);
          if (l.message === 'herald is listening') resolve(l.address);
        } catch (_) {
          /* not a log line of ours */
        }
      });
    });
    const first = await within(
      'herald to listen',
      Promise.race([listening, exited.then((x) => Promise.reject(new Error(`herald exited (${x.code ?? x.sig}):\n${this.log.join('\n')}`)))]),
      30000,
    );
    this.port = Number(String(first).split(':').pop());
    await eventually('herald to be ready', async () => (await fetch(this.base + '/readyz')).ok, 30000);
  }

  /** SIGKILL, as a crash: no goodbye to anyone. */
  async kill() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/* ------------------------------------------------------- the step service */

/**
 * A step service on a loopback port: `routes` maps a path to a handler
 * `(call) => ({ status, body })` (may be async); anything else answers 200
 * `{}`. Every call is recorded: path, Idempotency-Key, envelope.
 */
export async function stepService(scope, routes = {}) {
  const calls = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', async () => {
      let envelope = null;
      try {
        envelope = JSON.parse(raw);
      } catch (_) {
        /* not JSON */
      }
      const call = { path: req.url, key: req.headers['idempotency-key'], envelope };
      calls.push(call);
      const route = routes[req.url];
      const answer = route ? await route(call) : { status: 200, body: {} };
      res.on('error', () => {});
      const problem = answer.status >= 400;
      res.writeHead(answer.status, { 'content-type': problem ? 'application/problem+json' : 'application/json' });
      res.end(JSON.stringify(answer.body ?? {}));
    });
  });
  // A call herald gave up on (killed, say) may still be held here: let it go with the server.
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  scope.add(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${server.address().port}`, calls };
}

/** A gate: `wait()` resolves once `open()` was called (and at once after). */
export function gate() {
  const s = signal();
  return { wait: () => s.promise, open: () => s.resolve() };
}

/* ------------------------------------------------------------- the proxy */

/**
 * A TCP proxy to `port` on loopback. `cutMidEvent()` arms it: the next
 * chunk from herald that carries an SSE `data:` line is passed on only in
 * part (cut inside the event), and the connection is then closed.
 */
export async function cuttingProxy(scope, port) {
  const pairs = new Set();
  let armed = false;
  const state = { cuts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.on('data', (c) => upstream.write(c));
    upstream.on('data', (c) => {
      const text = c.toString('latin1');
      const at = text.indexOf('data: {'); // an event's, not a header's ("img-src data:")
      if (armed && at >= 0) {
        armed = false;
        state.cuts++;
        // Up to the middle of the event's data: its blank line never comes.
        client.write(c.subarray(0, at + 10), () => close());
        return;
      }
      client.write(c);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  scope.add(
    () =>
      new Promise((r) => {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream.destroy();
        }
        server.close(() => r());
      }),
  );
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    state,
    cutMidEvent() {
      armed = true;
    },
  };
}

/* ------------------------------------------------------------- watching */

/**
 * Watches operation `id` with `herald`, keeping what it was told: the
 * views and events delivered, the connection states, and promises for
 * 'live' (the first time) and the end.
 */
export function recordWatch(herald, id, options = {}) {
  const rec = { calls: [], states: [], live: signal(), end: signal() };
  rec.stop = herald.watchOperation(
    id,
    (view, event) => rec.calls.push({ view, event }),
    {
      ...options,
      onConnection(state, error) {
        rec.states.push(state);
        if (state === 'live') rec.live.resolve();
        if (['ended', 'not-found', 'refused'].includes(state)) rec.end.resolve({ state, error });
      },
    },
  );
  rec.events = () => rec.calls.filter((c) => c.event).map((c) => c.event);
  return rec;
}

/** Every seq from `from` to `to`, in order. */
export const seqs = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
