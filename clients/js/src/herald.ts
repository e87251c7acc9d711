/**
 * herald's client for browsers and node: start and read operations, watch
 * one live, watch an end user's inbox, and show a change at once while
 * herald does the work (the optimistic layer). No dependencies.
 *
 * # Layout
 *
 * - `HeraldError` — every refusal (`application/problem+json`) as one error type.
 * - `Herald` — the client: `start`, `get`, `list`, `cancel`, `resolve`,
 *   the inbox, `watchOperation` and `watchInbox`.
 * - `SseParser` — the Server-Sent Events wire format, parsed by hand: the
 *   streams are read over `fetch`, so that an `Authorization` header can go
 *   with them (`EventSource` cannot send one).
 * - `connect` — one connection of a stream; the watchers reconnect it with
 *   backoff and `Last-Event-ID`.
 * - `lagReporter` — how long after its commit a page showed an event.
 * - `optimistic` — a change shown at once, confirmed or visibly rolled back.
 *
 * This is one file on purpose: herald embeds it and the demo page loads it
 * with one `<script type="module">`, and `tsc` does not bundle. The types
 * of herald's answers are in `types.ts`, which compiles to nothing.
 *
 * ```js
 * import { Herald, newKey } from './herald.js';
 * const herald = new Herald({ baseUrl: '', token: () => session.token });
 * const view = await herald.start('place-order', input, { idempotencyKey: newKey() });
 * const stop = herald.watchOperation(view.id, (view, event) => render(view), {
 *   onConnection: (state) => showConnection(state),   // 'live' | 'reconnecting' | 'ended' | 'not-found' | 'refused'
 * });
 * ```
 * @module
 */

import type {
  Choice,
  InboxChange,
  InboxPage,
  NotUndone,
  Notification,
  OperationList,
  OperationView,
  OpStatus,
  Problem,
  ReadAll,
  TimelineEvent,
} from './types.js';

export type * from './types.js';

/* ======================================================================
 * Errors
 * ==================================================================== */

/** The `type` of a `HeraldError` for a request that got no answer at all. */
export const UNREACHABLE = 'urn:herald:client:unreachable';

/**
 * herald refused a request: its problem document (RFC 9457), or, when no
 * answer came, `status` 0 and `type` {@link UNREACHABLE}. Match on `type`,
 * never on the words; `detail` is written for the person who asked.
 */
export class HeraldError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The operation concerned: the running one (409) or the one a reused key started (422). */
  readonly operationId: string | undefined;
  /** Seconds, from `Retry-After`, when herald said when to try again. */
  readonly retryAfter: number | undefined;
  readonly cause: unknown;

  constructor(problem: Problem, retryAfter?: number, cause?: unknown) {
    super(problem.detail || problem.title);
    this.name = 'HeraldError';
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.operationId = problem.operation_id;
    this.retryAfter = retryAfter;
    this.cause = cause;
  }

  /** Worth asking again later: no answer, busy, or herald's store or a service away. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The error for an answer that is not 2xx; `body` is its text. */
function refusal(res: Response, body: string): HeraldError {
  const after = Number(res.headers.get('retry-after'));
  const retryAfter = Number.isFinite(after) && after > 0 ? after : undefined;
  let problem: Partial<Problem> | null = null;
  try {
    problem = JSON.parse(body);
  } catch (_) {
    /* not JSON: a proxy's page, say */
  }
  if (problem && typeof problem.type === 'string') {
    return new HeraldError({ ...problem, status: res.status } as Problem, retryAfter);
  }
  const title = res.statusText || 'HTTP ' + res.status;
  return new HeraldError({ type: 'about:blank', title, status: res.status, detail: `The server answered ${res.status}.` }, retryAfter);
}

function unreachable(cause: unknown): HeraldError {
  const detail = 'Could not reach the server. Check the connection and try again.';
  return new HeraldError({ type: UNREACHABLE, title: 'No answer', status: 0, detail }, undefined, cause);
}

const isAbort = (e: unknown) => (e as { name?: string } | null)?.name === 'AbortError';

/* ======================================================================
 * The client
 * ==================================================================== */

/** A token, or a function giving the current one (asked before every request, so it may refresh). */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

export interface HeraldOptions {
  /** herald's origin, such as `https://herald.example.com`; `''` (the default) is the page's own. */
  baseUrl?: string;
  /** A service's token, or an end user's JWT, sent as `Authorization: Bearer`. */
  token?: TokenSource;
  /** Another `fetch` (tests, instrumentation). */
  fetch?: typeof fetch;
  /**
   * How streams reconnect: the first wait (a stream's `retry:` replaces
   * it), the longest, and how long a silent stream is trusted (herald
   * sends a keep-alive every 15 s). Defaults: 1 s, 30 s, 45 s.
   */
  reconnect?: { initialMs?: number; maxMs?: number; idleMs?: number };
}

export interface StartOptions {
  /** Sending the same request again with the same key returns the same operation. */
  idempotencyKey?: string;
  /** Whom the operation is about, overriding the workflow's `subject` pointer. */
  subject?: string;
  /** Wait up to this many seconds for the end (`Prefer: wait`); the answer is then the final view. */
  wait?: number;
  signal?: AbortSignal;
}

export interface ListQuery {
  subject?: string;
  workflow?: string;
  status?: OpStatus;
  flag?: 'late' | 'needs_attention';
  cursor?: string;
  limit?: number;
}

/** The state of a watch's connection. */
export type ConnectionState =
  /** The stream is open. */
  | 'live'
  /** The stream dropped or could not be opened; trying again with backoff. */
  | 'reconnecting'
  /** Over: the operation has ended and every event was delivered. */
  | 'ended'
  /** There is no such operation (or it is not this caller's). */
  | 'not-found'
  /** herald refused the watch for good (a 4xx but 401, 404, 408 and 429); the error says why. */
  | 'refused';

export interface WatchOptions {
  onConnection?: (state: ConnectionState, error?: HeraldError) => void;
  /**
   * The last event this page has seen: only the events after it are
   * delivered, each as `onUpdate(view, event)`, and there is no first
   * `onUpdate(view, null)`.
   */
  lastEventId?: number;
  /** Aborting it stops the watch, as calling the returned function does. */
  signal?: AbortSignal;
  /**
   * Report to herald (`POST /v1/ui/lag`) how long after its commit each
   * event committed while the stream was open was shown (after `onUpdate`,
   * at the next frame), by herald's clock (`GET /v1/clock`). herald exports
   * it as `herald_ui_commit_to_render_seconds`.
   */
  reportLag?: boolean;
}

export interface InboxWatchOptions {
  onConnection?: (state: ConnectionState, error?: HeraldError) => void;
  /** The last change this page has seen (a notification's `version`): only later ones are delivered. */
  lastEventId?: number;
  signal?: AbortSignal;
  /** How many notifications the first read takes (1–200, default 50). */
  limit?: number;
}

/** An end user's inbox as `watchInbox` keeps it. */
export interface Inbox {
  /** Most recently changed first. */
  items: Notification[];
  unread: number;
}

const FINAL: readonly OpStatus[] = ['succeeded', 'failed', 'cancelled'];

/** Is this status (or this event's type) the end of an operation? */
export const isFinal = (status: string): boolean => (FINAL as readonly string[]).includes(status);

/** A new idempotency key: one per intended request, kept when the request is sent again. */
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Herald {
  readonly baseUrl: string;
  private readonly token: TokenSource;
  private readonly fetchFn: typeof fetch;
  /** @internal */
  readonly reconnect: Required<NonNullable<HeraldOptions['reconnect']>>;

  constructor(options: HeraldOptions = {}) {
    this.baseUrl = String(options.baseUrl ?? '').replace(/\/+$/, '');
    this.token = options.token;
    // Called through a function, so the browser's fetch is not called on another object.
    const f = options.fetch;
    this.fetchFn = f ? (input, init) => f(input, init) : (input, init) => fetch(input, init);
    const r = options.reconnect ?? {};
    this.reconnect = { initialMs: r.initialMs ?? 1000, maxMs: r.maxMs ?? 30000, idleMs: r.idleMs ?? 45000 };
  }

  /** Starts an operation of `workflow`: the accepted operation (202), or with `wait` the final one if it ended in time. */
  start(workflow: string, input: unknown, options: StartOptions = {}): Promise<OperationView> {
    const headers: Record<string, string> = {};
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.subject) headers['herald-subject'] = options.subject;
    if (options.wait !== undefined) headers['prefer'] = 'wait=' + Math.max(0, Math.floor(options.wait));
    const path = `/v1/workflows/${encodeURIComponent(workflow)}/operations`;
    return this.request('POST', path, { body: input ?? {}, headers, signal: options.signal });
  }

  /** The operation with its steps, outcome and timeline. */
  get(id: string, options: { signal?: AbortSignal } = {}): Promise<OperationView> {
    return this.request('GET', opPath(id), { signal: options.signal });
  }

  /** Operations, newest first (an end user's own only, whatever the query). */
  list(query: ListQuery = {}, options: { signal?: AbortSignal } = {}): Promise<OperationList> {
    return this.request('GET', '/v1/operations' + queryString({ ...query }), { signal: options.signal });
  }

  /** Cancels the operation; herald undoes what was done, and the watch tells it. */
  cancel(id: string, reason?: string): Promise<OperationView> {
    return this.request('POST', opPath(id) + ':cancel', { body: reason === undefined ? {} : { reason } });
  }

  /**
   * The choice for an operation `awaiting_decision` (it collided with a
   * running one under `on_conflict = "ask"`): `keep` the running one (this
   * one is cancelled without running) or `replace` it (the running one is
   * undone, then this one runs). Once the choice was made, or time ran out
   * and the workflow's default was applied, herald refuses with 409.
   */
  resolve(id: string, choice: Choice): Promise<OperationView> {
    return this.request('POST', opPath(id) + ':resolve', { body: { choice } });
  }

  /** The end user's notifications, most recently changed first, and the unread count. */
  notifications(query: { cursor?: string; limit?: number } = {}, options: { signal?: AbortSignal } = {}): Promise<InboxPage> {
    return this.request('GET', '/v1/me/notifications' + queryString({ ...query }), { signal: options.signal });
  }

  markRead(notificationId: string): Promise<InboxChange> {
    return this.request('POST', `/v1/me/notifications/${encodeURIComponent(notificationId)}:read`);
  }

  markAllRead(): Promise<ReadAll> {
    return this.request('POST', '/v1/me/notifications:read-all');
  }

  /**
   * Follows one operation until it ends; returns `stop()`.
   *
   * - First `onUpdate(view, null)` with the current view; then
   *   `onUpdate(view, event)` once per new timeline event, in order, where
   *   `view` is the operation after at least that event (a burst of events
   *   shares one read of the operation). With `lastEventId`, only the
   *   events after it, and no first call.
   * - No event is delivered twice or skipped, across dropped connections
   *   and restarts of herald: the stream resumes with `Last-Event-ID`, and
   *   the events delivered are the operation's own timeline.
   * - It ends on the final event (succeeded, failed, cancelled), with
   *   `onConnection('ended')`.
   */
  watchOperation(
    id: string,
    onUpdate: (view: OperationView, event: TimelineEvent | null) => void,
    options: WatchOptions = {},
  ): () => void {
    return watchOperation(this, id, onUpdate, options);
  }

  /**
   * Follows the end user's inbox (an end user's token); returns `stop()`.
   * First `onChange(inbox, null)` with the first page of notifications,
   * then `onChange(inbox, change)` for each change after it, in order: a
   * notification is rewritten in place as its operation moves, so a change
   * replaces the notification with its id. It never ends by itself.
   */
  watchInbox(onChange: (inbox: Inbox, change: InboxChange | null) => void, options: InboxWatchOptions = {}): () => void {
    return watchInbox(this, onChange, options);
  }

  /** @internal The headers every request carries: the token, if any. */
  async authHeaders(): Promise<Record<string, string>> {
    const t = typeof this.token === 'function' ? await this.token() : this.token;
    return t ? { authorization: 'Bearer ' + t } : {};
  }

  /** @internal `fetch` with the token; no answer at all is a `HeraldError` with status 0. */
  async send(path: string, init: RequestInit): Promise<Response> {
    const headers = { ...(await this.authHeaders()), ...(init.headers as Record<string, string>) };
    try {
      return await this.fetchFn(this.baseUrl + path, { ...init, headers });
    } catch (e) {
      if (isAbort(e)) throw e;
      throw unreachable(e);
    }
  }

  /** @internal A JSON request; a refusal is thrown as a `HeraldError`. */
  async request<T>(
    method: 'GET' | 'POST',
    path: string,
    o: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<T> {
    // herald takes every POST as JSON, even one with no body.
    const json: Record<string, string> = method === 'POST' ? { 'content-type': 'application/json' } : {};
    const res = await this.send(path, {
      method,
      // no-cache: a browser revalidates with the ETag, so an unchanged operation is a cheap 304.
      cache: 'no-cache',
      headers: { accept: 'application/json', ...json, ...o.headers },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: o.signal,
    });
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      if (isAbort(e)) throw e;
      throw unreachable(e); // the answer was cut off
    }
    if (!res.ok) throw refusal(res, text);
    return (text ? JSON.parse(text) : null) as T;
  }
}

const opPath = (id: string) => '/v1/operations/' + encodeURIComponent(id);

function queryString(q: Record<string, string | number | undefined>): string {
  const p = Object.entries(q).filter(([, v]) => v !== undefined && v !== '');
  return p.length ? '?' + p.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&') : '';
}

/* ======================================================================
 * Server-Sent Events, parsed by hand
 * ==================================================================== */

/** One dispatched event of an SSE stream. */
export interface SseMessage {
  /** The last event id at this event (the stream's `id:`, carried forward). */
  id: string;
  /** `event:`, or `message`. */
  event: string;
  /** The `data:` lines joined by `\n`. */
  data: string;
}

/**
 * The SSE wire format (the HTML standard's "event stream interpretation"):
 * lines end in CRLF, LF or CR; `:` starts a comment (keep-alives); a blank
 * line dispatches the event; `data:` lines join with `\n`; `id:` sets the
 * last event id (also for events without data); `retry:` sets the
 * reconnection time. Feed it text as it arrives; an event cut off before
 * its blank line is never dispatched.
 */
export class SseParser {
  /** The id a reconnect sends as `Last-Event-ID`: that of the last dispatched event. */
  lastEventId: string;
  /** The last `retry:` in milliseconds, if the stream sent one. */
  retry: number | null = null;
  private buf = '';
  private started = false;
  private data: string[] = [];
  private event = '';
  private idBuffer: string;

  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** The events this text completes. */
  push(text: string): SseMessage[] {
    if (!this.started && text) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const buf = this.buf + text;
    const out: SseMessage[] = [];
    const eol = /\r\n?|\n/g;
    let pos = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      // A CR last in the text may be half of a CRLF: wait for the next text.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      const message = this.line(buf.slice(pos, m.index));
      pos = eol.lastIndex;
      if (message) out.push(message);
    }
    this.buf = buf.slice(pos);
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line[0] === ':') return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }

  private dispatch(): SseMessage | null {
    this.lastEventId = this.idBuffer;
    const data = this.data, event = this.event;
    this.data = [];
    this.event = '';
    if (!data.length) return null;
    return { id: this.lastEventId, event: event || 'message', data: data.join('\n') };
  }
}

/* ======================================================================
 * One stream, kept open
 * ==================================================================== */

/** Resolves after `ms`, or at once when `signal` is aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** How a stream's one connection ended. */
type Connection =
  | { kind: 'last' } // the reader said the last event came
  | { kind: 'dropped' } // the body ended or broke, or was silent too long
  | { kind: 'no-content' } // 204: nothing after Last-Event-ID, ever
  | { kind: 'refused'; error: HeraldError }
  | { kind: 'stopped' };

/** A backoff: exponential from `initialMs` to `maxMs`, half of it random, or what `Retry-After` says. */
class Backoff {
  private tries = 0;
  initialMs: number;
  constructor(private readonly r: Herald['reconnect']) {
    this.initialMs = r.initialMs;
  }
  reset() {
    this.tries = 0;
  }
  next(retryAfterSeconds?: number): number {
    const cap = Math.min(this.r.maxMs, this.initialMs * 2 ** Math.min(this.tries++, 16));
    const ms = cap / 2 + (Math.random() * cap) / 2;
    return Math.max(ms, (retryAfterSeconds ?? 0) * 1000);
  }
}

/** What a stream's reader does with one connection. */
interface Reader {
  /** The answer was 200: the stream is open. */
  open(): void;
  /** One event; true when it is the last (the connection is then let go). */
  message(m: SseMessage): boolean;
}

/**
 * Opens `path` once as an event stream, resuming after `lastEventId`, and
 * hands each event to the reader until the body ends, the reader says it
 * was the last, nothing (not even a keep-alive) came for `idleMs`, or
 * `signal` stops it. Each connection parses afresh: an event cut off with
 * the last one is dropped, and comes again after the resume.
 */
async function connect(
  herald: Herald,
  path: string,
  lastEventId: number,
  backoff: Backoff,
  signal: AbortSignal,
  reader: Reader,
): Promise<Connection> {
  const conn = new AbortController();
  const abort = () => conn.abort();
  signal.addEventListener('abort', abort);
  let idle: ReturnType<typeof setTimeout> | undefined;
  let silent = false;
  const watchdog = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      silent = true;
      conn.abort();
    }, herald.reconnect.idleMs);
  };
  const parser = new SseParser(String(lastEventId));
  try {
    const headers: Record<string, string> = { accept: 'text/event-stream', 'last-event-id': String(lastEventId) };
    watchdog();
    let res: Response;
    try {
      res = await herald.send(path, { headers, cache: 'no-store', signal: conn.signal });
    } catch (e) {
      if (signal.aborted) return { kind: 'stopped' };
      if (silent || isAbort(e) || e instanceof HeraldError) return { kind: 'dropped' };
      throw e;
    }
    if (res.status === 204) return { kind: 'no-content' };
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      return { kind: 'refused', error: refusal(res, text) };
    }
    backoff.reset();
    reader.open();
    const body = res.body.getReader();
    const utf8 = new TextDecoder();
    for (;;) {
      watchdog();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await body.read();
      } catch (_) {
        // Cut off ("terminated", a reset), silent too long, or stopped.
        return { kind: signal.aborted ? 'stopped' : 'dropped' };
      }
      if (chunk.done) return { kind: 'dropped' };
      for (const m of parser.push(utf8.decode(chunk.value, { stream: true }))) {
        if (reader.message(m)) {
          conn.abort(); // nothing follows: let the connection go
          return { kind: 'last' };
        }
      }
    }
  } finally {
    clearTimeout(idle);
    signal.removeEventListener('abort', abort);
    if (parser.retry !== null) backoff.initialMs = parser.retry;
  }
}

/** Is a refusal for good (stop watching), or worth trying again after a wait? */
const forGood = (e: HeraldError) => !e.transient && e.status !== 401; // a 401 may pass once the token is refreshed

/** What ends a watch, when herald says so. */
type End = { state: 'ended' | 'not-found' | 'refused'; error?: HeraldError };

const endFor = (e: HeraldError): End | null =>
  e.status === 404 ? { state: 'not-found', error: e } : forGood(e) ? { state: 'refused', error: e } : null;

/**
 * Runs a watch: its own abort controller, joined to `signal`; `stop()` ends
 * it without a word. A callback of the caller's that throws stops it, and
 * its error is thrown again where uncaught errors go (`crash`).
 */
function watch(
  signal: AbortSignal | undefined,
  run: (stopped: AbortSignal, crash: (e: unknown) => void) => Promise<void>,
): () => void {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  if (signal) {
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  }
  const crash = (e: unknown) => {
    if (ctl.signal.aborted && isAbort(e)) return; // a request cut short by stop()
    ctl.abort();
    setTimeout(() => {
      throw e;
    });
  };
  run(ctl.signal, crash).catch(crash);
  return stop;
}

/* ======================================================================
 * Watching an operation
 * ==================================================================== */

function watchOperation(
  herald: Herald,
  id: string,
  onUpdate: (view: OperationView, event: TimelineEvent | null) => void,
  options: WatchOptions,
): () => void {
  const tell = options.onConnection ?? (() => {});
  const path = opPath(id);
  return watch(options.signal, async (stopped, crash) => {
    const lags = options.reportLag ? lagReporter(herald, stopped) : null;
    const w = {
      // The last event delivered (-1: none yet, not even the first view).
      delivered: options.lastEventId ?? -1,
      // Only events committed while the stream was open count as lag; a
      // backlog read after a reconnect does not.
      liveSince: Infinity,
      liveUntil: Infinity,
      end: null as End | null,
      reading: null as Promise<void> | null,
      again: false,
    };

    // Reads the operation and delivers what is new in its timeline: the
    // stream only says when to look, so an event it dropped is not missed.
    async function readOnce(): Promise<void> {
      let view: OperationView;
      try {
        view = await herald.get(id, { signal: stopped });
      } catch (e) {
        if (stopped.aborted || !(e instanceof HeraldError)) throw e;
        w.end = endFor(e);
        if (w.end) return;
        throw e;
      }
      if (stopped.aborted) return;
      // herald reads the operation, then its timeline: the timeline may run
      // ahead of the status. Events past `last_seq` wait for a view that has them.
      view.timeline = view.timeline.filter((e) => e.seq <= view.last_seq);
      if (w.delivered < 0) onUpdate(view, null);
      else
        for (const e of view.timeline) {
          if (e.seq <= w.delivered) continue;
          w.delivered = e.seq;
          onUpdate(view, e);
          lags?.shown(e.at, w.liveSince, w.liveUntil);
        }
      w.delivered = Math.max(w.delivered, view.last_seq);
      if (isFinal(view.status)) w.end = { state: 'ended' };
    }

    // One read at a time; a call while one is out asks for another after it.
    function read(): Promise<void> {
      if (w.reading) {
        w.again = true;
        return w.reading;
      }
      const run = async () => {
        try {
          do {
            w.again = false;
            await readOnce();
          } while (w.again && !w.end && !stopped.aborted);
        } finally {
          w.reading = null;
        }
      };
      w.reading = run();
      return w.reading;
    }

    const backoff = new Backoff(herald.reconnect);
    // After a 204 or the last event the next read ends the watch; if it
    // does not (herald disagrees with itself), the next connection waits.
    let pause = false;
    while (!stopped.aborted) {
      try {
        await read();
      } catch (e) {
        if (stopped.aborted) break;
        if (!(e instanceof HeraldError)) throw e;
        tell('reconnecting', e);
        await sleep(backoff.next(e.retryAfter), stopped);
        continue;
      }
      if (w.end || stopped.aborted) break;
      if (pause) await sleep(backoff.next(), stopped);
      let failed: HeraldError | undefined;
      const conn = await connect(herald, path + '/events', w.delivered, backoff, stopped, {
        open() {
          pause = false;
          w.liveSince = Date.now();
          w.liveUntil = Infinity;
          tell('live');
        },
        message(m) {
          let e: TimelineEvent | null = null;
          try {
            e = JSON.parse(m.data);
          } catch (_) {
            /* a malformed event still means "look again" */
          }
          read().catch((err) => {
            if (stopped.aborted) return;
            if (err instanceof HeraldError) failed = err; // the stream goes on; the loop reads again after it
            else crash(err);
          });
          return !!e && isFinal(e.type);
        },
      });
      w.liveUntil = Date.now();
      if (conn.kind === 'stopped') break;
      if (conn.kind === 'last' || conn.kind === 'no-content') {
        pause = true;
        continue;
      }
      if (conn.kind === 'refused') {
        w.end = endFor(conn.error);
        if (w.end) break;
        failed = conn.error;
      }
      tell('reconnecting', failed);
      await sleep(backoff.next(failed?.retryAfter), stopped);
    }
    // A read still out finishes first, so nothing is told after the end.
    await w.reading?.catch(() => {});
    lags?.end();
    if (w.end && !stopped.aborted) tell(w.end.state, w.end.error);
  });
}

/* ======================================================================
 * Watching the inbox
 * ==================================================================== */

function watchInbox(
  herald: Herald,
  onChange: (inbox: Inbox, change: InboxChange | null) => void,
  options: InboxWatchOptions,
): () => void {
  const tell = options.onConnection ?? (() => {});
  return watch(options.signal, async (stopped) => {
    // A new object for each call, so that a page may compare by identity.
    let inbox: Inbox = { items: [], unread: 0 };
    // The last change delivered (-1: not even the first page). Versions
    // only grow; those of notifications rewritten since are never sent.
    let last = options.lastEventId ?? -1;
    const backoff = new Backoff(herald.reconnect);
    while (!stopped.aborted) {
      let failed: HeraldError | undefined;
      if (last < 0) {
        try {
          const page = await herald.notifications({ limit: options.limit ?? 50 }, { signal: stopped });
          if (stopped.aborted) break;
          inbox = { items: page.items, unread: page.unread };
          last = Math.max(0, ...page.items.map((n) => n.version));
          onChange(inbox, null);
        } catch (e) {
          if (stopped.aborted) break;
          if (!(e instanceof HeraldError)) throw e;
          failed = e;
        }
      }
      if (!failed) {
        const conn = await connect(herald, '/v1/me/notifications/stream', last, backoff, stopped, {
          open: () => tell('live'),
          message(m) {
            let change: InboxChange;
            try {
              change = JSON.parse(m.data);
            } catch (_) {
              return false; // not one of herald's: pass it over
            }
            const n = change.notification;
            if (!n || !(n.version > last)) return false; // seen already
            last = n.version;
            inbox = { items: [n, ...inbox.items.filter((x) => x.id !== n.id)], unread: change.unread };
            onChange(inbox, change);
            return false;
          },
        });
        if (conn.kind === 'stopped') break;
        if (conn.kind === 'refused') failed = conn.error;
      }
      const end = failed && endFor(failed);
      if (end) {
        tell(end.state, end.error);
        return;
      }
      tell('reconnecting', failed);
      await sleep(backoff.next(failed?.retryAfter), stopped);
    }
  });
}

/* ======================================================================
 * Lag reporting
 * ==================================================================== */

/** How long after its commit the page showed an event, by herald's clock, reported a few at a time. */
function lagReporter(herald: Herald, stopped: AbortSignal) {
  let offset: number | null = null;
  let samples: number[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  // herald's clock against ours, NTP-style: half the round trip is the error.
  const t0 = Date.now();
  herald
    .request<{ now_ms: number }>('GET', '/v1/clock', { signal: stopped })
    .then((c) => {
      offset = c.now_ms - (t0 + Date.now()) / 2;
    })
    .catch(() => {});
  const frame: (f: () => void) => void =
    typeof requestAnimationFrame === 'function' ? (f) => requestAnimationFrame(f) : (f) => setTimeout(f, 0);
  function flush() {
    clearTimeout(timer);
    timer = undefined;
    while (samples.length) {
      const body = JSON.stringify({ lags_ms: samples.splice(0, 100) });
      // keepalive: a report sent as the page goes away still arrives.
      herald
        .send('/v1/ui/lag', { method: 'POST', keepalive: true, body, headers: { 'content-type': 'application/json' } })
        .catch(() => {});
    }
  }
  return {
    /** Sends what is left, once the events shown last have had their frame. */
    end: () => frame(flush),
    /** `at`: the event's commit; `since` and `until`: when the stream was open, by our clock. */
    shown(at: string, since: number, until: number) {
      // Milliseconds only: not every browser parses herald's nanoseconds.
      const committed = Date.parse(at.replace(/(\.\d{3})\d+/, '$1'));
      if (offset === null || !(committed >= since + offset && committed <= until + offset)) return;
      const off = offset;
      frame(() => {
        samples.push(Math.min(Math.max(Date.now() + off - committed, 0), 3600000));
        if (samples.length >= 20) flush();
        else if (!timer) timer = setTimeout(flush, 5000);
      });
    },
  };
}

/* ======================================================================
 * The optimistic layer
 * ==================================================================== */

/** A step herald undid. */
export interface UndoneStep {
  step: string;
  /** What had been done, its done label ("Items reserved"). */
  label: string;
  /** How it was undone, its compensation's done label ("Items put back"), if the workflow names one. */
  undoneLabel: string | null;
}

/** What `rollback` is handed: why, and what herald undid. */
export interface Rollback {
  /** `refused`: herald did not take the request (or could not be reached). */
  status: 'failed' | 'cancelled' | 'refused';
  /** Why, in the user's words: herald's outcome summary, or the refusal's detail. */
  reason: string;
  /** The steps herald undid, in the order it undid them. */
  undone: UndoneStep[];
  /** What could not be undone (a person follows up those with `needs_attention`). */
  notUndone: NotUndone[];
  /** A sentence for an `aria-live` region. */
  announcement: string;
  /** The final operation; null when it was never started. */
  view: OperationView | null;
  /** The refusal, for `refused`. */
  error: HeraldError | null;
}

/** How an optimistic change ended. */
export interface Settled {
  status: 'succeeded' | Rollback['status'];
  /** A sentence for an `aria-live` region: what happened, in herald's words. */
  announcement: string;
  view: OperationView | null;
  /** What was handed to `rollback`; null when it was confirmed. */
  rollback: Rollback | null;
}

export interface OptimisticChange {
  /** Changes the page at once, marked pending. Called first, before herald is asked. */
  apply(): void;
  /**
   * Asks herald, with the key given: `(key) => herald.start('place-order', input, { idempotencyKey: key })`.
   * When herald cannot be reached or is busy it is called again, with the same key.
   */
  start(idempotencyKey: string): Promise<OperationView>;
  /** The operation succeeded: drop the pending mark. */
  confirm(view: OperationView, announcement: string): void;
  /** Required: undo the change on the page and show why (`reason`) and what herald undid (`undone`). */
  rollback(r: Rollback): void;
  /** Progress while it runs, as `watchOperation` tells it. */
  onUpdate?(view: OperationView, event: TimelineEvent | null): void;
  onConnection?(state: ConnectionState, error?: HeraldError): void;
  /**
   * Report the lag of the events shown through `onUpdate`, as
   * `watchOperation`'s `reportLag` does: for a page whose only watch of the
   * operation is this one.
   */
  reportLag?: boolean;
  /** What the request is called in an announcement when herald refused it (default "Your request"). */
  label?: string;
  /** How many times `start` is tried when herald cannot be reached (default 3). */
  attempts?: number;
  /** Stops watching: the promise rejects and the change stays pending. */
  signal?: AbortSignal;
}

/**
 * Shows a change at once and settles it by what herald does: confirmed
 * when the operation succeeds; rolled back, visibly, when it fails, is
 * cancelled, or is refused. The promise resolves with a sentence for an
 * `aria-live` region. It rejects only when the outcome cannot be known
 * (the operation is not found or may not be watched, or `signal` was
 * aborted); the change then stays pending.
 *
 * ```js
 * const settled = await optimistic(herald, {
 *   label: 'Your order',
 *   apply: () => basket.add(order, { pending: true }),
 *   start: (key) => herald.start('place-order', input, { idempotencyKey: key }),
 *   confirm: () => basket.markPlaced(order),
 *   rollback: ({ reason, undone }) => basket.remove(order, { reason, undone: undone.map((u) => u.label) }),
 * });
 * liveRegion.textContent = settled.announcement;
 * ```
 */
export async function optimistic(herald: Herald, change: OptimisticChange): Promise<Settled> {
  if (typeof change.rollback !== 'function') throw new TypeError('optimistic: a rollback is required (a change is never undone silently)');
  if (typeof change.confirm !== 'function') throw new TypeError('optimistic: a confirm is required (it drops the pending mark)');
  const key = newKey();
  const label = change.label ?? 'Your request';
  change.apply();

  let view: OperationView;
  try {
    view = await startWithRetries(change, key, change.attempts ?? 3);
  } catch (e) {
    if (!(e instanceof HeraldError)) throw e;
    const r: Rollback = {
      status: 'refused',
      reason: e.detail,
      undone: [],
      notUndone: [],
      announcement: `${label} was not done: ${sentence(e.detail)}`,
      view: null,
      error: e,
    };
    change.rollback(r);
    return { status: 'refused', announcement: r.announcement, view: null, rollback: r };
  }

  const final = isFinal(view.status) ? view : await untilFinal(herald, view, change);
  if (final.status === 'succeeded') {
    const announcement = final.outcome?.summary || `${final.label}: done.`;
    change.confirm(final, announcement);
    return { status: 'succeeded', announcement, view: final, rollback: null };
  }
  const r = rollbackOf(final);
  change.rollback(r);
  return { status: r.status, announcement: r.announcement, view: final, rollback: r };
}

async function startWithRetries(change: OptimisticChange, key: string, attempts: number): Promise<OperationView> {
  const wait = new Backoff({ initialMs: 500, maxMs: 4000, idleMs: 0 });
  for (let i = 1; ; i++) {
    try {
      return await change.start(key);
    } catch (e) {
      if (!(e instanceof HeraldError) || !e.transient || i >= attempts) throw e;
      await sleep(wait.next(e.retryAfter), change.signal ?? new AbortController().signal);
      if (change.signal?.aborted) throw e;
    }
  }
}

/** Watches until the operation ends; the final view. */
function untilFinal(herald: Herald, first: OperationView, change: OptimisticChange): Promise<OperationView> {
  return new Promise((resolve, reject) => {
    const stopped = () => reject(new DOMException('The watch was stopped; the change is still pending.', 'AbortError'));
    if (change.signal?.aborted) return stopped();
    let latest = first;
    const stop = herald.watchOperation(
      first.id,
      (view, event) => {
        latest = view;
        change.onUpdate?.(view, event);
      },
      {
        signal: change.signal,
        reportLag: change.reportLag,
        onConnection(state, error) {
          change.onConnection?.(state, error);
          // The view told last is final; should it not be, herald's own word is.
          if (state === 'ended') resolve(isFinal(latest.status) ? latest : herald.get(first.id));
          else if (state === 'not-found' || state === 'refused') {
            reject(error ?? new HeraldError({ type: 'urn:herald:problem:not-found', title: 'Not found', status: 404, detail: `no operation ${first.id}` }));
          }
        },
      },
    );
    change.signal?.addEventListener('abort', () => {
      stop();
      stopped();
    });
  });
}

/** What a failed or cancelled operation hands to `rollback`. */
export function rollbackOf(view: OperationView): Rollback {
  const outcome = view.outcome;
  const order = outcome?.undone ?? [];
  const undone = view.steps
    .filter((s) => s.status === 'compensated')
    .sort((a, b) => order.indexOf(a.done_label) - order.indexOf(b.done_label))
    .map((s) => ({ step: s.name, label: s.done_label, undoneLabel: s.undo?.done_label ?? null }));
  const reason = outcome?.summary || `${view.label} did not go through.`;
  return {
    status: view.status === 'cancelled' ? 'cancelled' : view.status === 'failed' ? 'failed' : 'refused',
    reason,
    undone,
    notUndone: outcome?.not_undone ?? [],
    announcement: reason,
    view,
    error: null,
  };
}

/** Text as a sentence: a capital first, a full stop last. */
function sentence(text: string): string {
  const t = text.trim();
  if (!t) return '';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
