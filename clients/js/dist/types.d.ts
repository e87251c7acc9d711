/** RFC 3339 time, as herald writes it ("2026-12-01T10:00:00.123Z"). */
export type Timestamp = string;
export type OpStatus = 'accepted'
/** It collided with a running operation (`on_conflict = "ask"`): its user chooses (`decision`). */
 | 'awaiting_decision' | 'running' | 'compensating' | 'succeeded' | 'failed' | 'cancelled';
export type StepState = 'pending' | 'running' | 'retrying'
/** Its next call waits for its service to take calls; no attempt is spent. */
 | 'waiting'
/** Failed for good with `on_failure = "hold"`: waits for a person. */
 | 'held' | 'succeeded' | 'failed' | 'skipped' | 'compensating' | 'compensated' | 'compensation_failed';
/** The labels of a step's compensation ("Putting your items back", "Items put back"). */
export interface UndoLabels {
    label: string;
    done_label: string;
}
/** A compensation's progress, once it has begun. */
export interface CompensationRun {
    attempts: number;
    base: number;
    next_attempt_at: Timestamp | null;
    /** Hidden (null) from end users. */
    error: string | null;
    started_at?: Timestamp;
}
export interface StepRun {
    name: string;
    /** Shown while it runs ("Taking your payment"). */
    label: string;
    /** Shown once done ("Payment taken"). */
    done_label: string;
    /** Steps with the same stage run at the same time. */
    stage: number;
    status: StepState;
    attempts: number;
    max_attempts: number;
    next_attempt_at: Timestamp | null;
    started_at: Timestamp | null;
    finished_at: Timestamp | null;
    expected_by: Timestamp | null;
    delayed: boolean;
    awaiting_callback: boolean;
    maybe_applied: boolean;
    /** null when the step cannot be undone. */
    undo: UndoLabels | null;
    /** The service's raw answer: null for end users. */
    result: unknown;
    /** The service's raw error: null for end users. */
    error: string | null;
    compensation: CompensationRun | null;
    retry_base: number;
    received?: unknown;
    /** The service the step waits for, while it waits. */
    waiting_for?: string;
}
/** Why an operation is being wound down. */
export type Ending = {
    kind: 'failed';
    step: string | null;
    reason: string;
} | {
    kind: 'cancelled';
    reason: string;
};
export interface NotUndone {
    step: string;
    /** The step's done label. */
    label: string;
    reason: string;
    /** Undoing it was tried and failed: a person must look. */
    needs_attention: boolean;
}
/** The final, honest account of what happened. */
export interface Outcome {
    status: OpStatus;
    /** One or two sentences for the user, written by herald. */
    summary: string;
    /** Done labels of the steps that succeeded and stayed done. */
    succeeded: string[];
    /** Done labels of the steps that were undone, in the order they were undone. */
    undone: string[];
    not_undone: NotUndone[];
    failed_step: string | null;
    reason: string | null;
}
/** Where an operation's expected time comes from. */
export type Basis = 
/** The workflow's `expected_within`. */
'configured'
/** The 90th percentile of the workflow's recent flow times (`expected_within = "auto"`). */
 | 'observed';
/** What the user was told up front of when the operation would be done. */
export interface Expectation {
    /** The window the operation was given; its end is the operation's `expected_by`. */
    within_ms: number;
    basis: Basis;
    /** In a person's words: "Usually takes under a minute". */
    text: string;
    /** What happens if it is not done by its `deadline_at`, when the workflow has a deadline. */
    if_late?: string;
}
/** The choice between a new request and the running one it collided with. */
export type Choice = 
/** The running one goes on; the new one is cancelled without running. */
'keep'
/** The running one is undone; the new one runs after it. */
 | 'replace';
/** What an `awaiting_decision` operation's user is asked. */
export interface Decision {
    /**
     * The running operation it collided with; shown to an end user only when
     * the concurrency key is their subject (otherwise it may be another's).
     */
    with?: string;
    /** When `default` is chosen for the user. */
    due_at: Timestamp;
    default: Choice;
}
export interface TraceContext {
    trace_id: string;
    span_id: string;
    parent_id?: string;
    sampled: boolean;
    state?: string;
}
/** An operation without its timeline (as lists carry it). */
export interface Operation {
    id: string;
    workflow: string;
    version: number;
    /** What the user is told this is ("Your order"). */
    label: string;
    subject: string | null;
    status: OpStatus;
    delayed: boolean;
    needs_attention: boolean;
    /** End users see only the workflow's `visible_input` fields. */
    input: unknown;
    created_at: Timestamp;
    updated_at: Timestamp;
    started_at: Timestamp | null;
    finished_at: Timestamp | null;
    expected_by: Timestamp | null;
    /** Absent when the workflow says nothing, or `auto` has not seen enough operations yet. */
    expectation?: Expectation;
    deadline_at: Timestamp | null;
    concurrency_key: string | null;
    queued_behind: string | null;
    /** The choice its user is asked to make, while `awaiting_decision`. */
    decision?: Decision;
    stage: number;
    steps: StepRun[];
    ending: Ending | null;
    /** Set once the operation has ended. */
    outcome: Outcome | null;
    /** The seq of the last timeline event; also the ETag. */
    last_seq: number;
    /** Input fields erased under the workflow's retention. */
    redacted?: string[];
    completion_order: number[];
    first_news_at?: Timestamp;
    trace?: TraceContext;
}
/** `GET /v1/operations/{id}`: the operation with its whole timeline. */
export interface OperationView extends Operation {
    timeline: TimelineEvent[];
}
export type Phase = 'forward' | 'compensation';
/** What every timeline event carries. */
interface EventBase {
    /** 1, 2, 3… within the operation; also the SSE event id. */
    seq: number;
    at: Timestamp;
    /** What a person is told, in plain words. */
    message: string;
}
/** One entry of an operation's timeline; `type` tells which. */
export type TimelineEvent = EventBase & ({
    type: 'accepted';
}
/** `behind`, `by` and `with` name another operation: absent for an end user unless the key is their own. */
 | {
    type: 'queued';
    behind?: string;
} | {
    type: 'started';
} | {
    type: 'step_started';
    step: string;
    attempt: number;
} | {
    type: 'step_awaiting';
    step: string;
} | {
    type: 'step_succeeded';
    step: string;
    attempt: number;
} | {
    type: 'step_retrying';
    step: string;
    attempt: number;
    error: string;
    next_attempt_at: Timestamp;
} | {
    type: 'step_failed';
    step: string;
    error: string;
} | {
    type: 'step_skipped';
    step: string;
} | {
    type: 'step_held';
    step: string;
    error: string;
} | {
    type: 'step_redriven';
    step: string;
    phase: Phase;
} | {
    type: 'step_delayed';
    step: string;
} | {
    type: 'step_waiting';
    step: string;
    phase: Phase;
    service: string;
} | {
    type: 'delayed';
}
/** Not done by its deadline (or, naming it, a step's): it is stopped and what was done undone. */
 | {
    type: 'deadline_passed';
    step?: string;
} | {
    type: 'cancel_requested';
    reason: string;
} | {
    type: 'superseded';
    by?: string;
}
/** It collided with `with`, running: its user is asked to choose. */
 | {
    type: 'decision_needed';
    with?: string;
}
/** The choice was made: by the user, or `by_default` when time ran out. */
 | {
    type: 'decided';
    choice: Choice;
    by_default: boolean;
} | {
    type: 'compensating';
    reason: string;
} | {
    type: 'compensation_started';
    step: string;
    attempt: number;
} | {
    type: 'compensation_retrying';
    step: string;
    attempt: number;
    error: string;
    next_attempt_at: Timestamp;
} | {
    type: 'step_compensated';
    step: string;
} | {
    type: 'compensation_failed';
    step: string;
    error: string;
} | {
    type: 'needs_attention';
    step: string;
} | {
    type: 'succeeded';
} | {
    type: 'failed';
    reason: string;
} | {
    type: 'cancelled';
    reason: string;
} | {
    type: 'redacted';
    fields: string[];
});
export type EventType = TimelineEvent['type'];
/** `GET /v1/operations`: newest first, without timelines. */
export interface OperationList {
    items: Operation[];
    next_cursor: string | null;
}
/** What changed a notification. */
export type Trigger = 'accepted' | 'decision' | 'step_done' | 'delayed' | 'succeeded' | 'failed' | 'cancelled' | 'needs_attention';
export type Level = 'info' | 'progress' | 'warning' | 'success' | 'error';
/** An operation's one notification in its subject's inbox, rewritten in place as it moves. */
export interface Notification {
    id: string;
    operation_id: string;
    title: string;
    body: string;
    level: Level;
    status: OpStatus;
    trigger: Trigger;
    needs_attention: boolean;
    read: boolean;
    /** The subject's change counter at this notification's last change: the inbox stream's event id. */
    version: number;
    created_at: Timestamp;
    updated_at: Timestamp;
}
/** A notification as it changed, with the unread count after it. */
export interface InboxChange {
    notification: Notification;
    unread: number;
}
/** `GET /v1/me/notifications`. */
export interface InboxPage {
    /** Most recently changed first. */
    items: Notification[];
    unread: number;
    next_cursor: string | null;
}
/** `POST /v1/me/notifications:read-all`. */
export interface ReadAll {
    marked: number;
    unread: number;
}
/** An RFC 9457 problem document, as herald writes them. */
export interface Problem {
    /** Stable: match on this (`urn:herald:problem:unknown-workflow`), not on the words. */
    type: string;
    title: string;
    status: number;
    detail: string;
    /** The operation concerned (an existing one, for conflicts and reused keys). */
    operation_id?: string;
}
export {};
