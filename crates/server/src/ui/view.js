// The operation view: one operation as herald keeps it (GET
// /v1/operations/{id}), drawn into #op. Everything shown comes from the
// view; nothing is guessed.

import { isFinal } from './herald.js';
import { $, bare, clock, countdown, esc, setHTML, timeTag } from './dom.js';

export const STATUS_TEXT = { accepted: 'Received', awaiting_decision: 'Waiting for your choice', running: 'In progress',
  compensating: 'Undoing', succeeded: 'Done', failed: 'Did not go through', cancelled: 'Cancelled' };
const FIELD_TEXT = { email: 'email address' };
const CHOICE_TEXT = { keep: 'the earlier request is kept and this one will not run',
  replace: 'this one replaces the earlier one, which is undone first' };

/** What happens if nobody chooses, in words ("the earlier request is kept and this one will not run"). */
export const defaultText = (choice) => CHOICE_TEXT[choice] || choice;

/* Icons: decorative (aria-hidden); the words next to them carry the meaning. */
const svg = (body, cls = '') => `<svg class="ic ${cls}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${body}</svg>`;
const ICON = {
  pending: svg('<circle cx="12" cy="12" r="9" fill="#fff" stroke="#8c959f" stroke-width="2"/>'),
  running: svg('<circle cx="12" cy="12" r="9" fill="#fff" stroke="#d0d7de" stroke-width="3"/><path d="M12 3a9 9 0 0 1 9 9" fill="none" stroke="#0969da" stroke-width="3" stroke-linecap="round"/>', 'spin'),
  retrying: svg('<circle cx="12" cy="12" r="10" fill="#8a5a00"/><path d="M12 6.5v7M12 16.5v.5" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  waiting: svg('<circle cx="12" cy="12" r="9" fill="#fff" stroke="#8a5a00" stroke-width="2"/><path d="M12 7v5l3 2" fill="none" stroke="#8a5a00" stroke-width="2" stroke-linecap="round"/>'),
  succeeded: svg('<circle cx="12" cy="12" r="10" fill="#1a7f37"/><path d="M7.5 12.5l3 3 6-6.5" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>'),
  failed: svg('<circle cx="12" cy="12" r="10" fill="#c4232d"/><path d="M8.5 8.5l7 7M15.5 8.5l-7 7" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  skipped: svg('<circle cx="12" cy="12" r="9" fill="#fff" stroke="#8c959f" stroke-width="2" stroke-dasharray="3 3"/><path d="M8 12h8" stroke="#8c959f" stroke-width="2"/>'),
  compensated: svg('<circle cx="12" cy="12" r="10" fill="#59636e"/><path d="M9 8.5L6 11.5l3 3" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/><path d="M6.5 11.5h7a3.5 3.5 0 0 1 0 7H11" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/>'),
  compensation_failed: svg('<path d="M12 2.5L22.5 21h-21z" fill="#c4232d"/><path d="M12 9v5.5M12 17.5v.5" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  held: svg('<circle cx="12" cy="12" r="10" fill="#8a5a00"/><path d="M9.5 8v8M14.5 8v8" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  parallel: svg('<circle cx="12" cy="12" r="9" fill="#fff" stroke="#8c959f" stroke-width="2"/><path d="M9.5 8v8M14.5 8v8" stroke="#57606a" stroke-width="2" stroke-linecap="round"/>'),
};
ICON.compensating = ICON.running.replace('#0969da', '#8a5a00');

/** Draws `v` into #op; with no view, the place-holder (`id`: the one being loaded, if any). */
export function renderOp(v, id) {
  const badge = $('#op-badge'), cancel = $('#cancel');
  $('#op-log-wrap').hidden = !v;
  if (!v) {
    $('#op-title').textContent = id ? 'Loading…' : 'What is happening';
    badge.hidden = true; cancel.hidden = true;
    $('#op-meta').textContent = id || 'Place an order or delete an account, and watch each step here as it happens.';
    ['#op-notices', '#op-steps', '#op-log'].forEach((s) => setHTML($(s), ''));
    return;
  }
  const final = isFinal(v.status);
  $('#op-title').textContent = v.label;
  badge.hidden = false;
  badge.className = 'badge b-' + v.status;
  badge.textContent = STATUS_TEXT[v.status] || v.status;
  cancel.hidden = !(v.status === 'accepted' || v.status === 'running');
  $('#op-meta').textContent = [v.subject && 'For ' + v.subject, 'started ' + clock(v.created_at),
    v.finished_at && 'finished ' + clock(v.finished_at), v.id].filter(Boolean).join(' · ');
  setHTML($('#op-notices'), noticesHTML(v, final));

  // Steps with the same stage run at the same time: one timeline entry for the group.
  const stages = [];
  for (const s of v.steps) (stages[s.stage] = stages[s.stage] || []).push(s);
  setHTML($('#op-steps'), stages.filter(Boolean).map((g) => g.length === 1
    ? `<li>${stepHTML(g[0], final)}</li>`
    : `<li class="par">${ICON.parallel}<div><p class="par-note">At the same time</p><div class="par-steps">${g.map((s) => stepHTML(s, final)).join('')}</div></div></li>`
  ).join(''));

  const log = $('#op-log');
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
  setHTML(log, v.timeline.map((e) => `<li class="${tone(e.type)}">${timeTag(e.at)}<span>${esc(e.message)}</span></li>`).join(''));
  if (atEnd) log.scrollTop = log.scrollHeight; // follow new entries unless the reader scrolled up
}

function noticesHTML(v, final) {
  let notes = '';
  if (final && v.outcome) notes += `<p class="outcome ${esc(v.outcome.status)}">${esc(v.outcome.summary)}</p>`;
  const decided = v.timeline.find((e) => e.type === 'decided');
  if (decided) notes += `<p class="said">${esc(decided.message)}.</p>`;
  if (v.status === 'awaiting_decision' && v.decision) {
    const d = v.decision;
    notes += `<div class="notice ask"><p><strong>Waiting for your choice:</strong> an earlier request is still in progress.
      If you do not choose by ${timeTag(d.due_at)}${countdown(d.due_at)}, ${esc(defaultText(d.default))} (the default).</p>
      <button type="button" class="small" data-choose="${esc(v.id)}">Choose…</button></div>`;
  }
  const held = v.steps.filter((s) => s.status === 'held');
  if (held.length && !final) {
    notes += `<div class="notice attention" role="note"><strong>Paused: ${esc(held.map((s) => s.label).join(', '))} did not work.</strong> A person has been alerted and will pick it up; this page will update by itself.</div>`;
  } else if (v.needs_attention) {
    const items = ((v.outcome && v.outcome.not_undone) || []).filter((n) => n.needs_attention)
      .map((n) => `<li>${esc(n.label)}: ${esc(n.reason)}</li>`).join('');
    notes += `<div class="notice attention" role="note"><strong>Something could not be undone.</strong> A person has been alerted and will follow up.${items ? `<ul>${items}</ul>` : ''}</div>`;
  }
  if (!final && v.queued_behind) {
    notes += `<p class="notice">Waiting for your earlier request to finish. <button type="button" class="small" data-op="${esc(v.queued_behind)}">Show it</button></p>`;
  }
  notes += expectationHTML(v);
  const erased = (v.redacted || []).map((f) => FIELD_TEXT[f] || f);
  if (erased.length) {
    notes += `<p class="erased"><strong>Your ${esc(erased.join(' and '))} ${erased.length > 1 ? 'were' : 'was'} erased</strong> from herald's records once the last email had gone out.</p>`;
  }
  if (v.status === 'compensating') {
    const why = v.ending && v.ending.reason ? ` (${esc(bare(v.ending.reason))})` : '';
    notes += `<p class="notice">What was already done is being undone${why}.</p>`;
  }
  return notes;
}

/**
 * When it is expected, while it runs: herald's words for the window and
 * the time in the reader's clock; past it, that it is late; and what the
 * deadline would do. Minutes are enough for a window of ten or more.
 */
function expectationHTML(v) {
  if (!['accepted', 'running'].includes(v.status)) return '';
  const e = v.expectation;
  const short = !!e && e.within_ms >= 600000;
  let out = '';
  if (v.delayed) {
    const was = v.expected_by ? ` It was expected by ${timeTag(v.expected_by, short)};` : '';
    out += `<p class="notice"><strong>Taking longer than usual.</strong>${was} it is still going; this page will update by itself.</p>`;
  } else if (e && v.expected_by) {
    const basis = e.basis === 'observed' ? ' (going by recent requests)' : '';
    out += `<p class="expect">${esc(e.text)}${basis} · expected by ${timeTag(v.expected_by, short)}</p>`;
  }
  if (e && e.if_late && v.deadline_at) {
    out += `<p class="expect deadline">${esc(e.if_late)} Deadline: ${timeTag(v.deadline_at, short)}.</p>`;
  }
  return out;
}

export function tone(type) {
  if (/failed|needs_attention|held|deadline_passed/.test(type)) return 'bad';
  if (/retrying|waiting|redriven|delayed|compensating|superseded|cancel_requested|decision_needed/.test(type)) return 'warn';
  if (/succeeded|compensated|redacted/.test(type)) return 'good';
  return '';
}

function stepHTML(s, final) {
  const undo = s.undo || {}, comp = s.compensation || {};
  let sr, title = esc(s.label), lines = [];
  switch (s.status) {
    case 'pending': sr = 'Not started yet'; break;
    case 'running':
      sr = 'In progress'; title += '…';
      if (s.attempts > 1) lines.push(['detail', `Attempt ${s.attempts} of ${s.max_attempts}`]);
      if (s.awaiting_callback) lines.push(['detail', 'In progress at the service…']);
      break;
    case 'retrying':
      sr = 'Retrying';
      lines.push(['warnline', `Attempt ${s.attempts} of ${s.max_attempts} failed: ${esc(bare(s.error) || 'no answer')}. ` +
        (s.next_attempt_at ? `Trying again at ${clock(s.next_attempt_at)}${countdown(s.next_attempt_at)}` : 'Trying again soon')]);
      break;
    case 'waiting':
      sr = 'Waiting'; title += '…';
      lines.push(['detail', `Waiting for the ${esc(s.waiting_for || '')} service to take it; no attempt is used while it waits.`]);
      break;
    case 'succeeded': sr = 'Done'; title = esc(s.done_label); break;
    case 'failed': sr = 'Failed'; lines.push(['badline', esc(s.error || 'It did not work.')]); break;
    case 'held':
      sr = 'Paused';
      lines.push(['badline', `It did not work (${esc(bare(s.error) || 'no answer')}). Paused until a person looks at it; you do not need to do anything.`]);
      break;
    case 'skipped': sr = 'Skipped'; lines.push(['detail', 'Not needed']); break;
    case 'compensating':
      sr = 'Being undone'; title = esc(s.done_label);
      lines.push(['warnline', undo.label ? `Undoing: ${esc(undo.label)}…` : 'Undoing…']);
      if (s.waiting_for) lines.push(['detail', `Waiting for the ${esc(s.waiting_for)} service to take it.`]);
      if (comp.error) lines.push(['warnline', `Attempt ${comp.attempts} failed: ${esc(bare(comp.error))}. ` +
        (comp.next_attempt_at ? `Trying again at ${clock(comp.next_attempt_at)}${countdown(comp.next_attempt_at)}` : 'Trying again soon')]);
      break;
    case 'compensated':
      sr = 'Undone'; title = `<del>${esc(s.done_label)}</del> <span class="tag">Undone</span>`;
      if (undo.done_label) lines.push(['detail', esc(undo.done_label)]);
      break;
    case 'compensation_failed':
      sr = 'Could not be undone'; title = esc(s.done_label);
      lines.push(['badline', 'Could not be undone — a person will follow up' + (comp.error ? ` (${esc(comp.error)})` : '')]);
      break;
    default: sr = s.status;
  }
  if (!final && ['running', 'retrying', 'waiting'].includes(s.status) && s.expected_by) {
    if (s.delayed) lines.push(['warnline', `<strong>Taking longer than usual.</strong> It was expected by ${timeTag(s.expected_by)}.`]);
    else lines.push(['detail', `Expected by ${timeTag(s.expected_by)}`]);
  } else if (s.delayed && !final && ['running', 'retrying', 'waiting', 'compensating'].includes(s.status)) {
    lines.push(['warnline', '<strong>Taking longer than usual.</strong>']);
  }
  const icon = ICON[s.status] || ICON.pending;
  const when = s.finished_at || (s.status !== 'pending' && s.started_at);
  return `<div class="step s-${esc(s.status)}">${icon}<div>
    <p class="title"><span><span class="sr-only">${sr}: </span>${title}</span>${timeTag(when)}</p>
    ${lines.map(([c, t]) => `<p class="${c}">${t}</p>`).join('')}</div></div>`;
}
