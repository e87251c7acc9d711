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
    constructor(problem, retryAfter, cause) {
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
    get transient() {
        return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
    }
}
/** The error for an answer that is not 2xx; `body` is its text. */
function refusal(res, body) {
    const after = Number(res.headers.get('retry-after'));
    const retryAfter = Number.isFinite(after) && after > 0 ? after : undefined;
    let problem = null;
    try {
        problem = JSON.parse(body);
    }
    catch (_) {
        /* not JSON: a proxy's page, say */
    }
    if (problem && typeof problem.type === 'string') {
        return new HeraldError({ ...problem, status: res.status }, retryAfter);
    }
    const title = res.statusText || 'HTTP ' + res.status;
    return new HeraldError({ type: 'about:blank', title, status: res.status, detail: `The server answered ${res.status}.` }, retryAfter);
}
function unreachable(cause) {
    const detail = 'Could not reach the server. Check the connection and try again.';
    return new HeraldError({ type: UNREACHABLE, title: 'No answer', status: 0, detail }, undefined, cause);
}
const isAbort = (e) => e?.name === 'AbortError';
const FINAL = ['succeeded', 'failed', 'cancelled'];
/** Is this status (or this event's type) the end of an operation? */
export const isFinal = (status) => FINAL.includes(status);
/** A new idempotency key: one per intended request, kept when the request is sent again. */
export function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
export class Herald {
    constructor(options = {}) {
        this.baseUrl = String(options.baseUrl ?? '').replace(/\/+$/, '');
        this.token = options.token;
        // Called through a function, so the browser's fetch is not called on another object.
        const f = options.fetch;
        this.fetchFn = f ? (input, init) => f(input, init) : (input, init) => fetch(input, init);
        const r = options.reconnect ?? {};
        this.reconnect = { initialMs: r.initialMs ?? 1000, maxMs: r.maxMs ?? 30000, idleMs: r.idleMs ?? 45000 };
    }
    /** Starts an operation of `workflow`: the accepted operation (202), or with `wait` the final one if it ended in time. */
    start(workflow, input, options = {}) {
        const headers = {};
        if (options.idempotencyKey)
            headers['idempotency-key'] = options.idempotencyKey;
        if (options.subject)
            headers['herald-subject'] = options.subject;
        if (options.wait !== undefined)
            headers['prefer'] = 'wait=' + Math.max(0, Math.floor(options.wait));
        const path = `/v1/workflows/${encodeURIComponent(workflow)}/operations`;
        return this.request('POST', path, { body: input ?? {}, headers, signal: options.signal });
    }
    /** The operation with its steps, outcome and timeline. */
    get(id, options = {}) {
        return this.request('GET', opPath(id), { signal: options.signal });
    }
    /** Operations, newest first (an end user's own only, whatever the query). */
    list(query = {}, options = {}) {
        return this.request('GET', '/v1/operations' + queryString({ ...query }), { signal: options.signal });
    }
    /** Cancels the operation; herald undoes what was done, and the watch tells it. */
    cancel(id, reason) {
        return this.request('POST', opPath(id) + ':cancel', { body: reason === undefined ? {} : { reason } });
    }
    /**
     * The choice for an operation `awaiting_decision` (it collided with a
     * running one under `on_conflict = "ask"`): `keep` the running one (this
     * one is cancelled without running) or `replace` it (the running one is
     * undone, then this one runs). Once the choice was made, or time ran out
     * and the workflow's default was applied, herald refuses with 409.
     */
    resolve(id, choice) {
        return this.request('POST', opPath(id) + ':resolve', { body: { choice } });
    }
    /** The end user's notifications, most recently changed first, and the unread count. */
    notifications(query = {}, options = {}) {
        return this.request('GET', '/v1/me/notifications' + queryString({ ...query }), { signal: options.signal });
    }
    markRead(notificationId) {
        return this.request('POST', `/v1/me/notifications/${encodeURIComponent(notificationId)}:read`);
    }
    markAllRead() {
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
    watchOperation(id, onUpdate, options = {}) {
        return watchOperation(this, id, onUpdate, options);
    }
    /**
     * Follows the end user's inbox (an end user's token); returns `stop()`.
     * First `onChange(inbox, null)` with the first page of notifications,
     * then `onChange(inbox, change)` for each change after it, in order: a
     * notification is rewritten in place as its operation moves, so a change
     * replaces the notification with its id. It never ends by itself.
     */
    watchInbox(onChange, options = {}) {
        return watchInbox(this, onChange, options);
    }
    /** @internal The headers every request carries: the token, if any. */
    async authHeaders() {
        const t = typeof this.token === 'function' ? await this.token() : this.token;
        return t ? { authorization: 'Bearer ' + t } : {};
    }
    /** @internal `fetch` with the token; no answer at all is a `HeraldError` with status 0. */
    async send(path, init) {
        const headers = { ...(await this.authHeaders()), ...init.headers };
        try {
            return await this.fetchFn(this.baseUrl + path, { ...init, headers });
        }
        catch (e) {
            if (isAbort(e))
                throw e;
            throw unreachable(e);
        }
    }
    /** @internal A JSON request; a refusal is thrown as a `HeraldError`. */
    async request(method, path, o = {}) {
        // herald takes every POST as JSON, even one with no body.
        const json = method === 'POST' ? { 'content-type': 'application/json' } : {};
        const res = await this.send(path, {
            method,
            // no-cache: a browser revalidates with the ETag, so an unchanged operation is a cheap 304.
            cache: 'no-cache',
            headers: { accept: 'application/json', ...json, ...o.headers },
            body: o.body === undefined ? undefined : JSON.stringify(o.body),
            signal: o.signal,
        });
        let text;
        try {
            text = await res.text();
        }
        catch (e) {
            if (isAbort(e))
                throw e;
            throw unreachable(e); // the answer was cut off
        }
        if (!res.ok)
            throw refusal(res, text);
        return (text ? JSON.parse(text) : null);
    }
}
const opPath = (id) => '/v1/operations/' + encodeURIComponent(id);
function queryString(q) {
    const p = Object.entries(q).filter(([, v]) => v !== undefined && v !== '');
    return p.length ? '?' + p.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&') : '';
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
    constructor(lastEventId = '') {
        /** The last `retry:` in milliseconds, if the stream sent one. */
        this.retry = null;
        this.buf = '';
        this.started = false;
        this.data = [];
        this.event = '';
        this.lastEventId = lastEventId;
        this.idBuffer = lastEventId;
    }
    /** The events this text completes. */
    push(text) {
        if (!this.started && text) {
            this.started = true;
            if (text.charCodeAt(0) === 0xfeff)
                text = text.slice(1);
        }
        const buf = this.buf + text;
        const out = [];
        const eol = /\r\n?|\n/g;
        let pos = 0;
        for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
            // A CR last in the text may be half of a CRLF: wait for the next text.
            if (m[0] === '\r' && m.index === buf.length - 1)
                break;
            const message = this.line(buf.slice(pos, m.index));
            pos = eol.lastIndex;
            if (message)
                out.push(message);
        }
        this.buf = buf.slice(pos);
        return out;
    }
    line(line) {
        if (line === '')
            return this.dispatch();
        if (line[0] === ':')
            return null;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value[0] === ' ')
            value = value.slice(1);
        if (field === 'data')
            this.data.push(value);
        else if (field === 'event')
            this.event = value;
        else if (field === 'id' && !value.includes('\0'))
            this.idBuffer = value;
        else if (field === 'retry' && /^\d+$/.test(value))
            this.retry = Number(value);
        return null;
    }
    dispatch() {
        this.lastEventId = this.idBuffer;
        const data = this.data, event = this.event;
        this.data = [];
        this.event = '';
        if (!data.length)
            return null;
        return { id: this.lastEventId, event: event || 'message', data: data.join('\n') };
    }
}
/* ======================================================================
 * One stream, kept open
 * ==================================================================== */
/** Resolves after `ms`, or at once when `signal` is aborted. */
function sleep(ms, signal) {
    return new Promise((resolve) => {
        if (signal.aborted)
            return resolve();
        const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            resolve();
        };
        const t = setTimeout(done, ms);
        signal.addEventListener('abort', done);
    });
}
/** A backoff: exponential from `initialMs` to `maxMs`, half of it random, or what `Retry-After` says. */
class Backoff {
    constructor(r) {
        this.r = r;
        this.tries = 0;
        this.initialMs = r.initialMs;
    }
    reset() {
        this.tries = 0;
    }
    next(retryAfterSeconds) {
        const cap = Math.min(this.r.maxMs, this.initialMs * 2 ** Math.min(this.tries++, 16));
        const ms = cap / 2 + (Math.random() * cap) / 2;
        return Math.max(ms, (retryAfterSeconds ?? 0) * 1000);
    }
}
/**
 * Opens `path` once as an event stream, resuming after `lastEventId`, and
 * hands each event to the reader until the body ends, the reader says it
 * was the last, nothing (not even a keep-alive) came for `idleMs`, or
 * `signal` stops it. Each connection parses afresh: an event cut off with
 * the last one is dropped, and comes again after the resume.
 */
async function connect(herald, path, lastEventId, backoff, signal, reader) {
    const conn = new AbortController();
    const abort = () => conn.abort();
    signal.addEventListener('abort', abort);
    let idle;
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
        const headers = { accept: 'text/event-stream', 'last-event-id': String(lastEventId) };
        watchdog();
        let res;
        try {
            res = await herald.send(path, { headers, cache: 'no-store', signal: conn.signal });
        }
        catch (e) {
            if (signal.aborted)
                return { kind: 'stopped' };
            if (silent || isAbort(e) || e instanceof HeraldError)
                return { kind: 'dropped' };
            throw e;
        }
        if (res.status === 204)
            return { kind: 'no-content' };
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
            let chunk;
            try {
                chunk = await body.read();
            }
            catch (_) {
                // Cut off ("terminated", a reset), silent too long, or stopped.
                return { kind: signal.aborted ? 'stopped' : 'dropped' };
            }
            if (chunk.done)
                return { kind: 'dropped' };
            for (const m of parser.push(utf8.decode(chunk.value, { stream: true }))) {
                if (reader.message(m)) {
                    conn.abort(); // nothing follows: let the connection go
                    return { kind: 'last' };
                }
            }
        }
    }
    finally {
        clearTimeout(idle);
        signal.removeEventListener('abort', abort);
        if (parser.retry !== null)
            backoff.initialMs = parser.retry;
    }
}
/** Is a refusal for good (stop watching), or worth trying again after a wait? */
const forGood = (e) => !e.transient && e.status !== 401; // a 401 may pass once the token is refreshed
const endFor = (e) => e.status === 404 ? { state: 'not-found', error: e } : forGood(e) ? { state: 'refused', error: e } : null;
/**
 * Runs a watch: its own abort controller, joined to `signal`; `stop()` ends
 * it without a word. A callback of the caller's that throws stops it, and
 * its error is thrown again where uncaught errors go (`crash`).
 */
function watch(signal, run) {
    const ctl = new AbortController();
    const stop = () => ctl.abort();
    if (signal) {
        if (signal.aborted)
            stop();
        else
            signal.addEventListener('abort', stop, { once: true });
    }
    const crash = (e) => {
        if (ctl.signal.aborted && isAbort(e))
            return; // a request cut short by stop()
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
function watchOperation(herald, id, onUpdate, options) {
    const tell = options.onConnection ?? (() => { });
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
            end: null,
            reading: null,
            again: false,
        };
        // Reads the operation and delivers what is new in its timeline: the
        // stream only says when to look, so an event it dropped is not missed.
        async function readOnce() {
            let view;
            try {
                view = await herald.get(id, { signal: stopped });
            }
            catch (e) {
                if (stopped.aborted || !(e instanceof HeraldError))
                    throw e;
                w.end = endFor(e);
                if (w.end)
                    return;
                throw e;
            }
            if (stopped.aborted)
                return;
            // herald reads the operation, then its timeline: the timeline may run
            // ahead of the status. Events past `last_seq` wait for a view that has them.
            view.timeline = view.timeline.filter((e) => e.seq <= view.last_seq);
            if (w.delivered < 0)
                onUpdate(view, null);
            else
                for (const e of view.timeline) {
                    if (e.seq <= w.delivered)
                        continue;
                    w.delivered = e.seq;
                    onUpdate(view, e);
                    lags?.shown(e.at, w.liveSince, w.liveUntil);
                }
            w.delivered = Math.max(w.delivered, view.last_seq);
            if (isFinal(view.status))
                w.end = { state: 'ended' };
        }
        // One read at a time; a call while one is out asks for another after it.
        function read() {
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
                }
                finally {
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
            }
            catch (e) {
                if (stopped.aborted)
                    break;
                if (!(e instanceof HeraldError))
                    throw e;
                tell('reconnecting', e);
                await sleep(backoff.next(e.retryAfter), stopped);
                continue;
            }
            if (w.end || stopped.aborted)
                break;
            if (pause)
                await sleep(backoff.next(), stopped);
            let failed;
            const conn = await connect(herald, path + '/events', w.delivered, backoff, stopped, {
                open() {
                    pause = false;
                    w.liveSince = Date.now();
                    w.liveUntil = Infinity;
                    tell('live');
                },
                message(m) {
                    let e = null;
                    try {
                        e = JSON.parse(m.data);
                    }
                    catch (_) {
                        /* a malformed event still means "look again" */
                    }
                    read().catch((err) => {
                        if (stopped.aborted)
                            return;
                        if (err instanceof HeraldError)
                            failed = err; // the stream goes on; the loop reads again after it
                        else
                            crash(err);
                    });
                    return !!e && isFinal(e.type);
                },
            });
            w.liveUntil = Date.now();
            if (conn.kind === 'stopped')
                break;
            if (conn.kind === 'last' || conn.kind === 'no-content') {
                pause = true;
                continue;
            }
            if (conn.kind === 'refused') {
                w.end = endFor(conn.error);
                if (w.end)
                    break;
                failed = conn.error;
            }
            tell('reconnecting', failed);
            await sleep(backoff.next(failed?.retryAfter), stopped);
        }
        // A read still out finishes first, so nothing is told after the end.
        await w.reading?.catch(() => { });
        lags?.end();
        if (w.end && !stopped.aborted)
            tell(w.end.state, w.end.error);
    });
}
/* ======================================================================
 * Watching the inbox
 * ==================================================================== */
function watchInbox(herald, onChange, options) {
    const tell = options.onConnection ?? (() => { });
    return watch(options.signal, async (stopped) => {
        // A new object for each call, so that a page may compare by identity.
        let inbox = { items: [], unread: 0 };
        // The last change delivered (-1: not even the first page). Versions
        // only grow; those of notifications rewritten since are never sent.
        let last = options.lastEventId ?? -1;
        const backoff = new Backoff(herald.reconnect);
        while (!stopped.aborted) {
            let failed;
            if (last < 0) {
                try {
                    const page = await herald.notifications({ limit: options.limit ?? 50 }, { signal: stopped });
                    if (stopped.aborted)
                        break;
                    inbox = { items: page.items, unread: page.unread };
                    last = Math.max(0, ...page.items.map((n) => n.version));
                    onChange(inbox, null);
                }
                catch (e) {
                    if (stopped.aborted)
                        break;
                    if (!(e instanceof HeraldError))
                        throw e;
                    failed = e;
                }
            }
            if (!failed) {
                const conn = await connect(herald, '/v1/me/notifications/stream', last, backoff, stopped, {
                    open: () => tell('live'),
                    message(m) {
                        let change;
                        try {
                            change = JSON.parse(m.data);
                        }
                        catch (_) {
                            return false; // not one of herald's: pass it over
                        }
                        const n = change.notification;
                        if (!n || !(n.version > last))
                            return false; // seen already
                        last = n.version;
                        inbox = { items: [n, ...inbox.items.filter((x) => x.id !== n.id)], unread: change.unread };
                        onChange(inbox, change);
                        return false;
                    },
                });
                if (conn.kind === 'stopped')
                    break;
                if (conn.kind === 'refused')
                    failed = conn.error;
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
function lagReporter(herald, stopped) {
    let offset = null;
    let samples = [];
    let timer;
    // herald's clock against ours, NTP-style: half the round trip is the error.
    const t0 = Date.now();
    herald
        .request('GET', '/v1/clock', { signal: stopped })
        .then((c) => {
        offset = c.now_ms - (t0 + Date.now()) / 2;
    })
        .catch(() => { });
    const frame = typeof requestAnimationFrame === 'function' ? (f) => requestAnimationFrame(f) : (f) => setTimeout(f, 0);
    function flush() {
        clearTimeout(timer);
        timer = undefined;
        while (samples.length) {
            const body = JSON.stringify({ lags_ms: samples.splice(0, 100) });
            // keepalive: a report sent as the page goes away still arrives.
            herald
                .send('/v1/ui/lag', { method: 'POST', keepalive: true, body, headers: { 'content-type': 'application/json' } })
                .catch(() => { });
        }
    }
    return {
        /** Sends what is left, once the events shown last have had their frame. */
        end: () => frame(flush),
        /** `at`: the event's commit; `since` and `until`: when the stream was open, by our clock. */
        shown(at, since, until) {
            // Milliseconds only: not every browser parses herald's nanoseconds.
            const committed = Date.parse(at.replace(/(\.\d{3})\d+/, '$1'));
            if (offset === null || !(committed >= since + offset && committed <= until + offset))
                return;
            const off = offset;
            frame(() => {
                samples.push(Math.min(Math.max(Date.now() + off - committed, 0), 3600000));
                if (samples.length >= 20)
                    flush();
                else if (!timer)
                    timer = setTimeout(flush, 5000);
            });
        },
    };
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
export async function optimistic(herald, change) {
    if (typeof change.rollback !== 'function')
        throw new TypeError('optimistic: a rollback is required (a change is never undone silently)');
    if (typeof change.confirm !== 'function')
        throw new TypeError('optimistic: a confirm is required (it drops the pending mark)');
    const key = newKey();
    const label = change.label ?? 'Your request';
    change.apply();
    let view;
    try {
        view = await startWithRetries(change, key, change.attempts ?? 3);
    }
    catch (e) {
        if (!(e instanceof HeraldError))
            throw e;
        const r = {
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
async function startWithRetries(change, key, attempts) {
    const wait = new Backoff({ initialMs: 500, maxMs: 4000, idleMs: 0 });
    for (let i = 1;; i++) {
        try {
            return await change.start(key);
        }
        catch (e) {
            if (!(e instanceof HeraldError) || !e.transient || i >= attempts)
                throw e;
            await sleep(wait.next(e.retryAfter), change.signal ?? new AbortController().signal);
            if (change.signal?.aborted)
                throw e;
        }
    }
}
/** Watches until the operation ends; the final view. */
function untilFinal(herald, first, change) {
    return new Promise((resolve, reject) => {
        const stopped = () => reject(new DOMException('The watch was stopped; the change is still pending.', 'AbortError'));
        if (change.signal?.aborted)
            return stopped();
        let latest = first;
        const stop = herald.watchOperation(first.id, (view, event) => {
            latest = view;
            change.onUpdate?.(view, event);
        }, {
            signal: change.signal,
            reportLag: change.reportLag,
            onConnection(state, error) {
                change.onConnection?.(state, error);
                // The view told last is final; should it not be, herald's own word is.
                if (state === 'ended')
                    resolve(isFinal(latest.status) ? latest : herald.get(first.id));
                else if (state === 'not-found' || state === 'refused') {
                    reject(error ?? new HeraldError({ type: 'urn:herald:problem:not-found', title: 'Not found', status: 404, detail: `no operation ${first.id}` }));
                }
            },
        });
        change.signal?.addEventListener('abort', () => {
            stop();
            stopped();
        });
    });
}
/** What a failed or cancelled operation hands to `rollback`. */
export function rollbackOf(view) {
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
function sentence(text) {
    const t = text.trim();
    if (!t)
        return '';
    return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
