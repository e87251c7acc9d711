// The operation view: one operation as herald keeps it (GET
// /v1/operations/{id}), drawn into #op. Everything shown comes from the
// view; nothing is guessed.

import { isFinal } from './herald.js';
import { $, bare, clock, countdown, esc, setHTML, timeTag } from './dom.js';
import { html, listOf, named, t } from './words.js';

/** An operation's status in words ("Done"). */
export const statusText = (status) => named('status', status);

/** What happens if nobody chooses, in words ("the earlier request is kept and this one will not run"). */
export const defaultText = (choice) => named('default', choice);

/** "If you do not choose by 14:32:05 (in 40 seconds), the earlier request is kept… (the default).", as markup. */
export const ifNoChoiceHTML = (d) => html('if-no-choice', { time: timeTag(d.due_at), countdown: countdown(d.due_at), default: esc(defaultText(d.default)) });

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
    $('#op-title').textContent = t(id ? 'loading' : 'what-is-happening');
    badge.hidden = true; cancel.hidden = true;
    $('#op-meta').textContent = id || t('op-placeholder');
    ['#op-notices', '#op-steps', '#op-log'].forEach((s) => setHTML($(s), ''));
    return;
  }
  const final = isFinal(v.status);
  $('#op-title').textContent = v.label;
  badge.hidden = false;
  badge.className = 'badge b-' + v.status;
  badge.textContent = statusText(v.status);
  cancel.hidden = !(v.status === 'accepted' || v.status === 'running');
  $('#op-meta').textContent = [v.subject && t('meta.for', { subject: v.subject }), t('meta.started', { time: clock(v.created_at) }),
    v.finished_at && t('meta.finished', { time: clock(v.finished_at) }), v.id].filter(Boolean).join(' · ');
  setHTML($('#op-notices'), noticesHTML(v, final));

  // Steps with the same stage run at the same time: one timeline entry for the group.
  const stages = [];
  for (const s of v.steps) (stages[s.stage] = stages[s.stage] || []).push(s);
  setHTML($('#op-steps'), stages.filter(Boolean).map((g) => g.length === 1
    ? `<li>${stepHTML(g[0], final)}</li>`
    : `<li class="par">${ICON.parallel}<div><p class="par-note">${esc(t('at-the-same-time'))}</p><div class="par-steps">${g.map((s) => stepHTML(s, final)).join('')}</div></div></li>`
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
    notes += `<div class="notice ask"><p><strong>${esc(t('waiting-for-choice'))}</strong> ${esc(t('ask-earlier'))}
      ${ifNoChoiceHTML(v.decision)}</p>
      <button type="button" class="small" data-choose="${esc(v.id)}">${esc(t('choose'))}</button></div>`;
  }
  const held = v.steps.filter((s) => s.status === 'held');
  if (held.length && !final) {
    notes += `<div class="notice attention" role="note"><strong>${esc(t('paused-title', { labels: listOf(held.map((s) => s.label)) }))}</strong> ${esc(t('paused-body'))}</div>`;
  } else if (v.needs_attention) {
    const items = ((v.outcome && v.outcome.not_undone) || []).filter((n) => n.needs_attention)
      .map((n) => `<li>${esc(n.label)}: ${esc(n.reason)}</li>`).join('');
    notes += `<div class="notice attention" role="note"><strong>${esc(t('not-undone-title'))}</strong> ${esc(t('not-undone-body'))}${items ? `<ul>${items}</ul>` : ''}</div>`;
  }
  if (!final && v.queued_behind) {
    notes += `<p class="notice">${esc(t('queued'))} <button type="button" class="small" data-op="${esc(v.queued_behind)}">${esc(t('show-it'))}</button></p>`;
  }
  notes += expectationHTML(v);
  // herald's words for an erased field (the workflow's), else the page's, else its name.
  const erased = (v.redacted || []).map((f) => (v.field_labels && v.field_labels[f]) || named('field', f));
  if (erased.length) {
    const said = t(erased.length > 1 ? 'erased-many' : 'erased-one', { fields: listOf(erased) });
    notes += `<p class="erased"><strong>${esc(said)}</strong> ${esc(t('erased-rest'))}</p>`;
  }
  if (v.status === 'compensating') {
    const why = v.ending && v.ending.reason ? ` (${bare(v.ending.reason)})` : '';
    notes += `<p class="notice">${esc(t('being-undone', { why }))}</p>`;
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
    const more = v.expected_by ? html('late-was-expected', { time: timeTag(v.expected_by, short) }) : esc(t('late-still-going'));
    out += `<p class="notice"><strong>${esc(t('late'))}</strong> ${more}</p>`;
  } else if (e && v.expected_by) {
    const basis = e.basis === 'observed' ? ' ' + esc(t('by-recent')) : '';
    out += `<p class="expect">${esc(e.text)}${basis} · ${html('expected-by', { time: timeTag(v.expected_by, short) })}</p>`;
  }
  if (e && e.if_late && v.deadline_at) {
    out += `<p class="expect deadline">${esc(e.if_late)} ${html('deadline', { time: timeTag(v.deadline_at, short) })}</p>`;
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
  const again = (at) => at ? html('trying-again-at', { time: clock(at), countdown: countdown(at) }) : esc(t('trying-again-soon'));
  let title = esc(s.label), lines = [];
  switch (s.status) {
    case 'running':
      title += '…';
      if (s.attempts > 1) lines.push(['detail', esc(t('attempt-of', { n: s.attempts, max: s.max_attempts }))]);
      if (s.awaiting_callback) lines.push(['detail', esc(t('at-the-service'))]);
      break;
    case 'retrying':
      lines.push(['warnline', esc(t('attempt-failed', { n: s.attempts, max: s.max_attempts, error: bare(s.error) || t('no-answer') })) + ' ' + again(s.next_attempt_at)]);
      break;
    case 'waiting':
      title += '…';
      lines.push(['detail', esc(t('waiting-for-service', { service: s.waiting_for || '' }))]);
      break;
    case 'succeeded': title = esc(s.done_label); break;
    case 'failed': lines.push(['badline', esc(s.error || t('did-not-work'))]); break;
    case 'held':
      lines.push(['badline', esc(t('held-line', { error: bare(s.error) || t('no-answer') }))]);
      break;
    case 'skipped': lines.push(['detail', esc(t('not-needed'))]); break;
    case 'compensating':
      title = esc(s.done_label);
      lines.push(['warnline', esc(undo.label ? t('undoing-label', { label: undo.label }) : t('undoing'))]);
      if (s.waiting_for) lines.push(['detail', esc(t('waiting-for-service-undo', { service: s.waiting_for }))]);
      if (comp.error) lines.push(['warnline', esc(t('undo-attempt-failed', { n: comp.attempts, error: bare(comp.error) })) + ' ' + again(comp.next_attempt_at)]);
      break;
    case 'compensated':
      title = `<del>${esc(s.done_label)}</del> <span class="tag">${esc(t('undone-tag'))}</span>`;
      if (undo.done_label) lines.push(['detail', esc(undo.done_label)]);
      break;
    case 'compensation_failed':
      title = esc(s.done_label);
      lines.push(['badline', esc(t('could-not-undo')) + (comp.error ? ` (${esc(comp.error)})` : '')]);
      break;
    default: break;
  }
  if (!final && ['running', 'retrying', 'waiting'].includes(s.status) && s.expected_by) {
    if (s.delayed) lines.push(['warnline', `<strong>${esc(t('late'))}</strong> ${html('step-was-expected', { time: timeTag(s.expected_by) })}`]);
    else lines.push(['detail', html('step-expected-by', { time: timeTag(s.expected_by) })]);
  } else if (s.delayed && !final && ['running', 'retrying', 'waiting', 'compensating'].includes(s.status)) {
    lines.push(['warnline', `<strong>${esc(t('late'))}</strong>`]);
  }
  const icon = ICON[s.status] || ICON.pending;
  const when = s.finished_at || (s.status !== 'pending' && s.started_at);
  // What a screen reader hears first: the step's state ("Done: Items reserved").
  const sr = named('step', s.status);
  return `<div class="step s-${esc(s.status)}">${icon}<div>
    <p class="title"><span><span class="sr-only">${esc(sr)}: </span>${title}</span>${timeTag(when)}</p>
    ${lines.map(([c, text]) => `<p class="${c}">${text}</p>`).join('')}</div></div>`;
}
