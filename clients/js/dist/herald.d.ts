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
import type { Choice, InboxChange, InboxPage, NotUndone, Notification, OperationList, OperationView, OpStatus, Problem, ReadAll, TimelineEvent } from './types.js';
export type * from './types.js';
/** The `type` of a `HeraldError` for a request that got no answer at all. */
export declare const UNREACHABLE = "urn:herald:client:unreachable";
/**
 * herald refused a request: its problem document (RFC 9457), or, when no
 * answer came, `status` 0 and `type` {@link UNREACHABLE}. Match on `type`,
 * never on the words; `detail` is written for the person who asked.
 */
export declare class HeraldError extends Error {
    readonly status: number;
    readonly type: string;
    readonly title: string;
    readonly detail: string;
    /** The operation concerned: the running one (409) or the one a reused key started (422). */
    readonly operationId: string | undefined;
    /** Seconds, from `Retry-After`, when herald said when to try again. */
    readonly retryAfter: number | undefined;
    readonly cause: unknown;
    constructor(problem: Problem, retryAfter?: number, cause?: unknown);
    /** Worth asking again later: no answer, busy, or herald's store or a service away. */
    get transient(): boolean;
}
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
    reconnect?: {
        initialMs?: number;
        maxMs?: number;
        idleMs?: number;
    };
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
'live'
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
/** Is this status (or this event's type) the end of an operation? */
export declare const isFinal: (status: string) => boolean;
/** A new idempotency key: one per intended request, kept when the request is sent again. */
export declare function newKey(): string;
export declare class Herald {
    readonly baseUrl: string;
    private readonly token;
    private readonly fetchFn;
    /** @internal */
    readonly reconnect: Required<NonNullable<HeraldOptions['reconnect']>>;
    constructor(options?: HeraldOptions);
    /** Starts an operation of `workflow`: the accepted operation (202), or with `wait` the final one if it ended in time. */
    start(workflow: string, input: unknown, options?: StartOptions): Promise<OperationView>;
    /** The operation with its steps, outcome and timeline. */
    get(id: string, options?: {
        signal?: AbortSignal;
    }): Promise<OperationView>;
    /** Operations, newest first (an end user's own only, whatever the query). */
    list(query?: ListQuery, options?: {
        signal?: AbortSignal;
    }): Promise<OperationList>;
    /** Cancels the operation; herald undoes what was done, and the watch tells it. */
    cancel(id: string, reason?: string): Promise<OperationView>;
    /**
     * The choice for an operation `awaiting_decision` (it collided with a
     * running one under `on_conflict = "ask"`): `keep` the running one (this
     * one is cancelled without running) or `replace` it (the running one is
     * undone, then this one runs). Once the choice was made, or time ran out
     * and the workflow's default was applied, herald refuses with 409.
     */
    resolve(id: string, choice: Choice): Promise<OperationView>;
    /** The end user's notifications, most recently changed first, and the unread count. */
    notifications(query?: {
        cursor?: string;
        limit?: number;
    }, options?: {
        signal?: AbortSignal;
    }): Promise<InboxPage>;
    markRead(notificationId: string): Promise<InboxChange>;
    markAllRead(): Promise<ReadAll>;
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
    watchOperation(id: string, onUpdate: (view: OperationView, event: TimelineEvent | null) => void, options?: WatchOptions): () => void;
    /**
     * Follows the end user's inbox (an end user's token); returns `stop()`.
     * First `onChange(inbox, null)` with the first page of notifications,
     * then `onChange(inbox, change)` for each change after it, in order: a
     * notification is rewritten in place as its operation moves, so a change
     * replaces the notification with its id. It never ends by itself.
     */
    watchInbox(onChange: (inbox: Inbox, change: InboxChange | null) => void, options?: InboxWatchOptions): () => void;
    /** @internal The headers every request carries: the token, if any. */
    authHeaders(): Promise<Record<string, string>>;
    /** @internal `fetch` with the token; no answer at all is a `HeraldError` with status 0. */
    send(path: string, init: RequestInit): Promise<Response>;
    /** @internal A JSON request; a refusal is thrown as a `HeraldError`. */
    request<T>(method: 'GET' | 'POST', path: string, o?: {
        body?: unknown;
        headers?: Record<string, string>;
        signal?: AbortSignal;
    }): Promise<T>;
}
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
export declare class SseParser {
    /** The id a reconnect sends as `Last-Event-ID`: that of the last dispatched event. */
    lastEventId: string;
    /** The last `retry:` in milliseconds, if the stream sent one. */
    retry: number | null;
    private buf;
    private started;
    private data;
    private event;
    private idBuffer;
    constructor(lastEventId?: string);
    /** The events this text completes. */
    push(text: string): SseMessage[];
    private line;
    private dispatch;
}
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
export declare function optimistic(herald: Herald, change: OptimisticChange): Promise<Settled>;
/** What a failed or cancelled operation hands to `rollback`. */
export declare function rollbackOf(view: OperationView): Rollback;
