// The demo page's behaviour (index.html). Served as its own file, so the
// page's Content-Security-Policy can allow only same-origin scripts.
'use strict';

/* ======================================================================
 * Copy me: a tiny client for watching one herald operation.
 *
 *   const stop = watchOperation('https://herald.example.com', 'op_…',
 *     (view, event) => render(view),   // event is null for the first call
 *     (state) => showConnection(state),  // optional
 *     userToken,                         // optional: an end user's JWT
 *     { reportLag: true });              // optional: see below
 *   // later: stop();
 *
 * - First call: onUpdate(view, null) with the current OperationView.
 * - Then once per new timeline event: onUpdate(view, event), in order, where
 *   `view` is the state after at least that event. The GET is repeated
 *   after each event (at most one in flight; a burst shares one GET), and
 *   events are taken from view.timeline, so none is missed even if the
 *   stream dropped some while reconnecting.
 * - onConnection(state): 'live' | 'reconnecting' | 'ended' | 'not-found'.
 * - The stream (Server-Sent Events) starts after the events already seen;
 *   EventSource reconnects by itself with Last-Event-ID. It is closed on a
 *   final event (succeeded, failed, cancelled): the server then ends the
 *   stream and a reconnect would only get 204.
 * - baseUrl may be '' for the same origin.
 * - reportLag: for each event committed while the stream was open, how
 *   long after its commit the page showed it (after onUpdate, at the next
 *   frame) is sent to herald (POST /v1/ui/lag, a few at a time), which
 *   exports it as herald_ui_commit_to_render_seconds. The page's clock is
 *   set by herald's (GET /v1/clock), to within half a round trip.
 * ==================================================================== */
const FINAL_TYPES = ['succeeded', 'failed', 'cancelled'];

function watchOperation(baseUrl, id, onUpdate, onConnection, token, options) {
  const base = String(baseUrl || '').replace(/\/+$/, '');
  const url = base + '/v1/operations/' + encodeURIComponent(id);
  // An end user's token: a header for fetch, the query for EventSource (it cannot send headers).
  const auth = token ? { authorization: 'Bearer ' + token } : {};
  const tokenQuery = token ? '&access_token=' + encodeURIComponent(token) : '';
  const tell = onConnection || function () {};
  const lags = options && options.reportLag ? lagReporter(base, auth) : null;
  let es = null, timer = 0, stopped = false, busy = false, again = false, seen = -1, liveSince = Infinity;

  function close() { if (es) { es.close(); es = null; } if (lags) lags.flush(); }

  async function sync() {
    if (busy) { again = true; return; }
    busy = true;
    let ok = false, ended = false, gone = false;
    do {
      again = false;
      try {
        // no-cache: the browser revalidates with the ETag, so an unchanged answer is a cheap 304.
        const r = await fetch(url, { cache: 'no-cache', headers: { accept: 'application/json', ...auth } });
        if (r.status === 404) { gone = true; break; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const view = await r.json();
        if (stopped) return;
        if (seen < 0) onUpdate(view, null);
        else for (const e of view.timeline) {
          if (e.seq <= seen) continue;
          onUpdate(view, e);
          if (lags) lags.shown(e.at, liveSince);
        }
        seen = Math.max(seen, view.last_seq);
        ended = FINAL_TYPES.includes(view.status);
        ok = true;
      } catch (_) { ok = false; }
    } while (again && !stopped);
    busy = false;
    if (stopped) return;
    if (gone) { close(); tell('not-found'); }
    else if (ended) { close(); tell('ended'); }
    else if (!es) {
      if (ok) open(); else { tell('reconnecting'); timer = setTimeout(sync, 3000); }
    }
  }

  function open() {
    // `after` matters only for the first connection; reconnects send Last-Event-ID.
    es = new EventSource(url + '/events?after=' + seen + tokenQuery);
    // Only events committed while the stream is open count as lag; a
    // backlog read after a reconnect is not.
    es.onopen = () => { liveSince = Date.now(); tell('live'); };
    es.onmessage = (m) => {
      let e = null;
      try { e = JSON.parse(m.data); } catch (_) { /* a malformed event still means "look again" */ }
      if (e && FINAL_TYPES.includes(e.type)) close();
      sync();
    };
    es.onerror = () => {
      if (stopped || !es) return;
      tell('reconnecting');
      // CLOSED means the browser gave up (an error answer, or 204 after the end): look again ourselves.
      if (es.readyState === EventSource.CLOSED) { close(); timer = setTimeout(sync, 3000); }
    };
  }

  sync();
  return function stop() { stopped = true; clearTimeout(timer); close(); };
}

/* How long after its commit a page showed an event, by herald's clock,
 * reported a few at a time (see reportLag above). */
function lagReporter(base, auth) {
  let offset = null, samples = [], timer = 0;
  // herald's clock against ours, NTP-style: half the round trip is the error.
  const t0 = Date.now();
  fetch(base + '/v1/clock', { cache: 'no-store', headers: { accept: 'application/json', ...auth } })
    .then((r) => r.json())
    .then((c) => { offset = c.now_ms - (t0 + Date.now()) / 2; })
    .catch(() => {});
  function flush() {
    clearTimeout(timer); timer = 0;
    while (samples.length) {
      const body = JSON.stringify({ lags_ms: samples.splice(0, 100) });
      fetch(base + '/v1/ui/lag', { method: 'POST', keepalive: true, body,
        headers: { 'content-type': 'application/json', ...auth } }).catch(() => {});
    }
  }
  return {
    flush,
    // `at`: the event's commit; `since`: when the stream opened, by our clock.
    shown(at, since) {
      const committed = Date.parse(at);
      if (offset === null || !(committed >= since + offset)) return;
      requestAnimationFrame(() => {
        samples.push(Math.min(Math.max(Date.now() + offset - committed, 0), 3600000));
        if (samples.length >= 20) flush(); else if (!timer) timer = setTimeout(flush, 5000);
      });
    },
  };
}

/* ======================================================================
 * The page.
 * ==================================================================== */
const $ = (sel) => document.querySelector(sel);
const FINAL = FINAL_TYPES; // the final statuses are named like the final events
const STATUS_TEXT = { accepted: 'Received', running: 'In progress', compensating: 'Undoing',
  succeeded: 'Done', failed: 'Did not go through', cancelled: 'Cancelled' };
const FIELD_TEXT = { email: 'email address' };
const state = { id: null, view: null, stop: null, recent: [], recentAt: 0 };

const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const clock = (t) => t ? new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }) : '';
// Errors arrive as sentences; drop the final stop so "…: <error>. Trying again" reads once.
const bare = (e) => String(e || '').trim().replace(/[.!]+$/, '');
const timeTag = (t) => t ? `<time datetime="${esc(t)}">${clock(t)}</time>` : '';
// A countdown the ticker below keeps current, so "trying again" stays true without a refetch.
const countdown = (t) => t ? ` <span data-until="${esc(t)}">${until(t)}</span>` : '';
function until(t) {
  const s = Math.ceil((new Date(t) - Date.now()) / 1000);
  return s > 0 ? `(in ${s} s)` : '(now)';
}
setInterval(() => document.querySelectorAll('[data-until]').forEach((el) => { el.textContent = until(el.dataset.until); }), 1000);

// Only touch the DOM when the markup changed, so focus and scroll survive redraws.
function setHTML(el, html) { if (el._html !== html) { el._html = html; el.innerHTML = html; } }

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

/* ---------- status announcements and connection indicator ---------- */
function announce(sentence) {
  if (!sentence) return;
  const live = $('#live');
  const p = document.createElement('p');
  p.textContent = sentence;
  live.appendChild(p); // appended, not replaced, so a burst of events is read one after another
  while (live.childElementCount > 5) live.firstElementChild.remove();
}
function setConnection(s) {
  const el = $('#conn');
  const shown = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting' : 'idle';
  el.dataset.state = shown;
  el.textContent = shown === 'reconnecting' ? 'reconnecting…' : shown;
  if (s === 'not-found') {
    $('#op-title').textContent = 'Not found';
    showAlert(`There is no operation ${state.id} on this server.`);
  }
}

/* ---------- alerts (problem+json detail) ---------- */
function showAlert(text, opId) {
  $('#alert-text').textContent = text;
  const show = $('#alert-show');
  show.hidden = !opId;
  show.onclick = () => { hideAlert(); select(opId); };
  $('#alert').hidden = false;
}
function hideAlert() { $('#alert').hidden = true; }
$('#alert-close').addEventListener('click', hideAlert);

async function api(method, path, body, headers = {}) {
  let r;
  try {
    // herald takes every POST as JSON, even one with no body.
    const json = body || method === 'POST' ? { 'content-type': 'application/json' } : {};
    r = await fetch(path, { method, headers: { accept: 'application/json', ...json, ...headers },
      body: body ? JSON.stringify(body) : undefined });
  } catch (_) {
    throw Object.assign(new Error('Could not reach herald. Is it still running?'), { problem: null });
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!r.ok) throw Object.assign(new Error((data && data.detail) || `The server answered ${r.status}.`), { problem: data });
  return data;
}

/* ---------- starting operations ---------- */
// One Idempotency-Key per intended request: kept if the request has to be sent
// again (a click while waiting, a lost answer), new once it was accepted or the
// form changed, so a double click never starts two operations.
function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return 'ui-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
async function start(form, workflow, input) {
  const btn = form.querySelector('[type=submit]');
  // aria-disabled rather than disabled: a disabled button would drop keyboard focus.
  if (btn.getAttribute('aria-disabled') === 'true') return;
  btn.setAttribute('aria-disabled', 'true');
  form.key = form.key || newKey();
  try {
    const view = await api('POST', `/v1/workflows/${encodeURIComponent(workflow)}/operations`, input, { 'Idempotency-Key': form.key });
    form.key = null;
    hideAlert();
    announce(`${view.label}: request received.`);
    select(view.id);
    loadRecent();
    if (matchMedia('(max-width: 899px)').matches) $('#op').scrollIntoView({ block: 'start' });
  } catch (e) {
    showAlert(e.message, e.problem && e.problem.operation_id);
  } finally {
    btn.removeAttribute('aria-disabled');
  }
}
for (const f of document.forms) f.addEventListener('input', () => { f.key = null; });
document.querySelectorAll('[data-card]').forEach((b) => b.addEventListener('click', () => {
  $('#card').value = b.dataset.card;
  $('#order-form').key = null;
}));

$('#order-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const customer = me();
  const items = Array.from(document.querySelectorAll('[data-sku]'))
    .map((i) => ({ sku: i.dataset.sku, qty: parseInt(i.value, 10) || 0 })).filter((i) => i.qty > 0);
  const card = $('#card').value.replace(/\D/g, '');
  if (!customer) return showAlert('Please enter your name at the top ("You are").');
  if (!items.length) return showAlert('Please choose at least one item.');
  if (!card) return showAlert('Please enter a card number, or pick one of the test cards.');
  start(ev.target, 'place-order', { customer, items, card });
});
$('#account-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user_id = me(), email = $('#email').value.trim();
  if (!user_id) return showAlert('Please enter your name at the top ("You are").');
  if (!email) return showAlert('Please enter the email.');
  start(ev.target, 'delete-account', { user_id, email });
});

$('#cancel').addEventListener('click', async (ev) => {
  const btn = ev.currentTarget;
  if (!state.id || btn.getAttribute('aria-disabled') === 'true') return;
  btn.setAttribute('aria-disabled', 'true');
  try {
    // What follows (undoing, then "cancelled") arrives as events like everything else.
    await api('POST', `/v1/operations/${encodeURIComponent(state.id)}:cancel`, { reason: 'cancelled from the demo page' });
  } catch (e) { showAlert(e.message, null); } finally { btn.removeAttribute('aria-disabled'); }
});

/* ---------- recent operations ---------- */
async function loadRecent() {
  state.recentAt = Date.now();
  try {
    const list = await api('GET', '/v1/operations?limit=10');
    state.recent = list.items || [];
    renderRecent();
  } catch (_) { /* the list is a convenience: the operation view reports problems */ }
}
// Keeps badges of operations nobody is watching honest, without fast polling.
setInterval(() => {
  const open = state.recent.some((o) => !FINAL.includes(o.status) && o.id !== state.id);
  if (!document.hidden && open && Date.now() - state.recentAt >= 10000) loadRecent();
}, 10000);

function renderRecent() {
  $('#recent-empty').hidden = state.recent.length > 0;
  setHTML($('#recent-list'), state.recent.map((o) => `<li><button type="button" class="op-item" data-op="${esc(o.id)}"${o.id === state.id ? ' aria-current="true"' : ''}>
    <span><strong>${esc(o.label)}</strong>${o.subject ? ' · ' + esc(o.subject) : ''}</span>
    <span class="row"><span class="badge b-${esc(o.status)}">${esc(STATUS_TEXT[o.status] || o.status)}</span><small>${clock(o.created_at)}</small></span></button></li>`).join(''));
}
$('#recent-list').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-op]');
  if (b) select(b.dataset.op);
});

/* ---------- selecting an operation (kept in the URL hash) ---------- */
function select(id) {
  if (location.hash.slice(1) !== id) location.hash = id; // hashchange calls show()
  else show(id);
}
function fromHash() { const h = decodeURIComponent(location.hash.slice(1)); return /^op_[0-9a-z]+$/i.test(h) ? h : null; }
window.addEventListener('hashchange', () => show(fromHash()));

function show(id) {
  if (state.stop) state.stop();
  state.stop = null;
  state.id = id;
  state.view = null;
  renderRecent();
  renderInbox();
  renderOp(null);
  setConnection('idle');
  if (id) state.stop = watchOperation('', id, onUpdate, setConnection, undefined, { reportLag: true });
}

function onUpdate(view, event) {
  if (view.id !== state.id) return;
  state.view = view;
  renderOp(view);
  // Keep the list's badge for this operation in step without asking the server.
  const i = state.recent.findIndex((o) => o.id === view.id);
  if (i >= 0 && state.recent[i].status !== view.status) { state.recent[i] = view; renderRecent(); }
  if (event) {
    announce(event.message);
    if (FINAL_TYPES.includes(event.type)) { loadRecent(); loadOutbox(); lateLook(view.id); }
  }
}

// Some news comes after the end (the farewell email goes out, then the
// address is erased), when the stream is already closed: look a few times more.
function lateLook(id) {
  for (const ms of [1000, 3000, 7000]) setTimeout(() => { if (state.id === id) refetch(id); }, ms);
}
async function refetch(id) {
  try {
    const v = await api('GET', '/v1/operations/' + encodeURIComponent(id));
    if (state.id !== id || !state.view) return;
    const seen = state.view.last_seq;
    state.view = v;
    renderOp(v);
    for (const e of v.timeline) if (e.seq > seen) { announce(e.message); if (e.type === 'redacted') loadOutbox(); }
  } catch (_) { /* the view stays as it was */ }
}

/* ---------- the operation view ---------- */
function renderOp(v) {
  const badge = $('#op-badge'), cancel = $('#cancel');
  $('#op-log-wrap').hidden = !v;
  if (!v) {
    $('#op-title').textContent = state.id ? 'Loading…' : 'What is happening';
    badge.hidden = true; cancel.hidden = true;
    $('#op-meta').textContent = state.id ? state.id : 'Place an order or delete an account, and watch each step here as it happens.';
    ['#op-notices', '#op-steps', '#op-log'].forEach((s) => setHTML($(s), ''));
    return;
  }
  const final = FINAL.includes(v.status);
  $('#op-title').textContent = v.label;
  badge.hidden = false;
  badge.className = 'badge b-' + v.status;
  badge.textContent = STATUS_TEXT[v.status] || v.status;
  cancel.hidden = !(v.status === 'accepted' || v.status === 'running');
  $('#op-meta').textContent = [v.subject && 'For ' + v.subject, 'started ' + clock(v.created_at),
    v.finished_at && 'finished ' + clock(v.finished_at), v.id].filter(Boolean).join(' · ');

  let notes = '';
  if (final && v.outcome) {
    notes += `<p class="outcome ${esc(v.outcome.status)}">${esc(v.outcome.summary)}</p>`;
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
  if (!final && v.delayed) notes += '<p class="notice"><strong>Taking longer than usual.</strong> It is still going; this page will update by itself.</p>';
  const erased = (v.redacted || []).map((f) => FIELD_TEXT[f] || f);
  if (erased.length) {
    notes += `<p class="erased"><strong>Your ${esc(erased.join(' and '))} ${erased.length > 1 ? 'were' : 'was'} erased</strong> from herald's records once the last email had gone out.</p>`;
  }
  if (v.status === 'compensating') {
    const why = v.ending && v.ending.reason ? ` (${esc(bare(v.ending.reason))})` : '';
    notes += `<p class="notice">What was already done is being undone${why}.</p>`;
  }
  setHTML($('#op-notices'), notes);

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

function tone(type) {
  if (/failed|needs_attention|held/.test(type)) return 'bad';
  if (/retrying|waiting|redriven|delayed|compensating|superseded|cancel_requested/.test(type)) return 'warn';
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
  if (s.delayed && !final && ['running', 'retrying', 'waiting', 'compensating'].includes(s.status)) {
    lines.push(['warnline', '<strong>Taking longer than usual.</strong>']);
  }
  const icon = ICON[s.status] || ICON.pending;
  const when = s.finished_at || (s.status !== 'pending' && s.started_at);
  return `<div class="step s-${esc(s.status)}">${icon}<div>
    <p class="title"><span><span class="sr-only">${sr}: </span>${title}</span>${timeTag(when)}</p>
    ${lines.map(([c, t]) => `<p class="${c}">${t}</p>`).join('')}</div></div>`;
}

$('#op-notices').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-op]');
  if (b) select(b.dataset.op);
});

/* ---------- who you are ---------- */
function me() { return $('#me').value.trim(); }
function showMe() { document.querySelectorAll('[data-me]').forEach((el) => { el.textContent = me() || '(nobody yet)'; }); }
try { const saved = localStorage.getItem('herald-demo-me'); if (saved) $('#me').value = saved; } catch (_) { /* private mode */ }
let meTimer = 0;
$('#me').addEventListener('input', () => {
  showMe();
  for (const f of document.forms) f.key = null; // a different person: a different request
  try { localStorage.setItem('herald-demo-me', me()); } catch (_) { /* private mode */ }
  clearTimeout(meTimer);
  meTimer = setTimeout(connectInbox, 400);
});
$('#me').addEventListener('change', () => { clearTimeout(meTimer); if (me() !== inbox.user) connectInbox(); });

/* ---------- the bell: this person's notifications ----------
 * POST /demo/session gives a user token for the name at the top (demo only).
 * The list comes from GET /v1/me/notifications, then the stream sends every
 * change after it; a notification is rewritten in place as its operation
 * moves, so changes replace by id. */
const inbox = { off: false, gen: 0, user: null, token: null, es: null, items: new Map(), unread: 0, retry: 0 };
const bearer = () => ({ authorization: 'Bearer ' + inbox.token });

function closeInboxStream() { if (inbox.es) { inbox.es.close(); inbox.es = null; } clearTimeout(inbox.retry); }

async function connectInbox() {
  if (inbox.off) return;
  const gen = ++inbox.gen, user = me();
  closeInboxStream();
  if (!user) { inbox.user = null; inbox.items = new Map(); inbox.unread = 0; renderInbox(); return; }
  try {
    const r = await fetch('/demo/session', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ user }) });
    if (gen !== inbox.gen) return;
    if (r.status === 404 || r.status === 405) { inbox.off = true; $('#bell').hidden = true; closePanel(false); return; }
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const s = await r.json();
    const list = await api('GET', '/v1/me/notifications?limit=50', null, { authorization: 'Bearer ' + s.token });
    if (gen !== inbox.gen) return;
    if (inbox.user !== s.user) inbox.items = new Map();
    inbox.user = s.user; inbox.token = s.token;
    for (const n of list.items || []) inbox.items.set(n.id, n);
    inbox.unread = list.unread || 0;
    $('#bell').hidden = false;
    renderInbox();
    const after = Math.max(0, ...(list.items || []).map((n) => n.version));
    const es = new EventSource(`/v1/me/notifications/stream?after=${after}&access_token=${encodeURIComponent(s.token)}`);
    inbox.es = es;
    es.onmessage = (m) => { if (gen === inbox.gen) onInboxChange(m.data); };
    es.onerror = () => {
      // CLOSED: the browser gave up (say the token expired): start over in a while.
      if (es.readyState === EventSource.CLOSED && gen === inbox.gen) { closeInboxStream(); inbox.retry = setTimeout(connectInbox, 5000); }
    };
  } catch (_) {
    if (gen === inbox.gen) inbox.retry = setTimeout(connectInbox, 5000);
  }
}

function onInboxChange(data) {
  let c;
  try { c = JSON.parse(data); } catch (_) { return; }
  const n = c.notification;
  if (!n || !n.id) return;
  const before = inbox.items.get(n.id);
  inbox.items.set(n.id, n);
  if (typeof c.unread === 'number') inbox.unread = c.unread;
  renderInbox();
  // The timeline already tells the selected operation's news; the others get one short sentence.
  if (!n.read && n.operation_id !== state.id && (!before || before.body !== n.body)) announce(`New: ${n.title} — ${n.body}`);
  if (['succeeded', 'failed', 'cancelled'].includes(n.trigger)) { loadOutbox(); setTimeout(loadOutbox, 2000); }
}

// Colour tells the level; words say it too where it matters.
const LEVEL_TEXT = { warning: 'Taking longer', error: 'Problem' };
const levelWord = (n) => n.needs_attention ? 'Needs attention' : LEVEL_TEXT[n.level];
function renderInbox() {
  const bell = $('#bell'), count = $('#bell-count');
  bell.setAttribute('aria-label', `Notifications, ${inbox.unread ? inbox.unread + ' unread' : 'none unread'}`);
  count.textContent = inbox.unread > 99 ? '99+' : String(inbox.unread);
  count.hidden = !inbox.unread;
  const items = Array.from(inbox.items.values()).sort((a, b) => b.version - a.version);
  $('#notif-empty').hidden = items.length > 0;
  $('#read-all').hidden = !inbox.unread;
  setHTML($('#notif-list'), items.map((n) => `<li><button type="button" class="nt l-${esc(n.level)}${n.read ? '' : ' unread'}${n.needs_attention ? ' attn' : ''}" data-nt="${esc(n.id)}" data-op="${esc(n.operation_id)}"${n.operation_id === state.id ? ' aria-current="true"' : ''}>
    <span class="dot" aria-hidden="true"></span><span class="t">${n.read ? '' : '<span class="sr-only">Unread: </span>'}${esc(n.title)}</span>${timeTag(n.updated_at)}
    <span class="b">${levelWord(n) ? `<span class="lv">${esc(levelWord(n))}:</span> ` : ''}${esc(n.body)}</span></button></li>`).join(''));
}

function openPanel() {
  $('#notif-panel').hidden = false;
  $('#bell').setAttribute('aria-expanded', 'true');
  $('#np-h').focus();
}
function closePanel(focusBell) {
  if ($('#notif-panel').hidden) return;
  $('#notif-panel').hidden = true;
  $('#bell').setAttribute('aria-expanded', 'false');
  if (focusBell) $('#bell').focus();
}
$('#bell').addEventListener('click', () => { if ($('#notif-panel').hidden) openPanel(); else closePanel(false); });
$('#np-close').addEventListener('click', () => closePanel(true));
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && !$('#notif-panel').hidden) { ev.preventDefault(); closePanel(true); }
});
document.addEventListener('click', (ev) => {
  if (!$('#notif-panel').hidden && !ev.target.closest('#notif-panel, #bell')) closePanel(false);
});
$('#notif-list').addEventListener('click', async (ev) => {
  const b = ev.target.closest('[data-nt]');
  if (!b) return;
  const id = b.dataset.nt, op = b.dataset.op;
  closePanel(false);
  select(op);
  $('#op-title').focus();
  const n = inbox.items.get(id);
  if (n && !n.read) {
    try {
      const c = await api('POST', `/v1/me/notifications/${encodeURIComponent(id)}:read`, null, bearer());
      if (c && c.notification) inbox.items.set(c.notification.id, c.notification);
      if (c && typeof c.unread === 'number') inbox.unread = c.unread;
      renderInbox();
    } catch (e) { showAlert(e.message, null); }
  }
});
$('#read-all').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/v1/me/notifications:read-all', null, bearer());
    for (const n of inbox.items.values()) n.read = true;
    inbox.unread = r && typeof r.unread === 'number' ? r.unread : 0;
    renderInbox();
    announce('All notifications marked read.');
    $('#np-h').focus(); // the button just disappeared
  } catch (e) { showAlert(e.message, null); }
});

/* ---------- demo emails (the demo's own mail server, GET /demo/outbox) ---------- */
let outboxBusy = false;
async function loadOutbox() {
  if (outboxBusy) return;
  outboxBusy = true;
  try {
    const r = await fetch('/demo/outbox', { cache: 'no-store', headers: { accept: 'application/json' } });
    if (r.status === 404) { $('#mail').hidden = true; return; }
    if (!r.ok) return;
    renderOutbox(await r.json());
    $('#mail').hidden = false;
  } catch (_) { /* a convenience: try again next time */ } finally { outboxBusy = false; }
}
function parseMail(raw) {
  const text = String(raw || '').replace(/\r\n/g, '\n');
  const cut = text.indexOf('\n\n');
  const head = cut < 0 ? text : text.slice(0, cut), body = cut < 0 ? '' : text.slice(cut + 2);
  const m = /^subject:[ \t]*(.*(?:\n[ \t].*)*)/im.exec(head);
  let subject = m ? m[1].replace(/\n[ \t]+/g, ' ').trim() : '(no subject)';
  // An encoded subject (RFC 2047, UTF-8 base64 or Q): decode it when we can.
  subject = subject.replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (all, how, s) => {
    try {
      const bytes = how.toLowerCase() === 'b' ? Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0))
        : Uint8Array.from(s.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (x, h) => String.fromCharCode(parseInt(h, 16))), (ch) => ch.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    } catch (_) { return all; }
  });
  const qp = /content-transfer-encoding:\s*quoted-printable/i.test(head);
  let b = body;
  if (qp) {
    const bytes = Uint8Array.from(body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (x, h) => String.fromCharCode(parseInt(h, 16))), (ch) => ch.charCodeAt(0) & 255);
    b = new TextDecoder().decode(bytes);
  }
  b = b.split('\n').filter((l) => l.trim()).slice(0, 4).join('\n');
  return { subject, body: b };
}
const MAIL_SHOWN = 10;
function renderOutbox(list) {
  const mails = Array.isArray(list) ? list : [];
  $('#mail-empty').hidden = mails.length > 0;
  const c = $('#mail-count');
  c.hidden = !mails.length; c.textContent = String(mails.length);
  setHTML($('#mail-list'), mails.slice(0, MAIL_SHOWN).map((m) => {
    const { subject, body } = parseMail(m.data);
    return `<li><p class="subj">${esc(subject)}</p><p class="to">To ${esc((m.to || []).join(', '))}</p><p class="body">${esc(body)}</p></li>`;
  }).join('') + (mails.length > MAIL_SHOWN ? `<li class="empty">And ${mails.length - MAIL_SHOWN} older.</li>` : ''));
}
$('#mail-details').addEventListener('toggle', () => { if ($('#mail-details').open) loadOutbox(); });

/* ---------- start ---------- */
showMe();
loadRecent();
show(fromHash());
connectInbox();
loadOutbox();
