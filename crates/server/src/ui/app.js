// The demo page's behaviour (index.html), as ES modules served by herald
// itself, so the page's Content-Security-Policy can allow only same-origin
// scripts. herald.js is the package's built file (clients/js/dist), the
// same client any front end would use: it starts operations, watches them
// and the inbox live, and shows an order at once with a visible rollback.
//
// This module ties the parts together: which operation is shown (kept in
// the URL hash) and its watch, the forms, and the connection indicator.
// The parts: view.js (an operation drawn), order.js (the basket and the
// optimistic order), recent.js ("Recent operations"), decide.js (the
// choice when requests collide), inbox.js (the bell), mail.js (the demo's
// emails), dom.js (what they share), words.js (the page's words, in the
// reader's language).

import { Herald, isFinal, newKey } from './herald.js';
import { $, announce, hideAlert, problemText, showAlert } from './dom.js';
import { createDecider } from './decide.js';
import { createInbox } from './inbox.js';
import { loadOutbox } from './mail.js';
import { basket, createOrders, itemsText } from './order.js';
import { createRecent } from './recent.js';
import { renderOp } from './view.js';
import { t, translatePage } from './words.js';

// The page's frame in the reader's language first; the parts below write theirs as they draw.
translatePage();

// No token: in the demo, herald takes callers without one as the shop's own back end.
const herald = new Herald();
const state = { id: null, view: null, stop: null };

const orders = createOrders(herald, {
  started(view) {
    hideAlert();
    announce(t('request-received', { label: view.label }));
    select(view.id);
    recent.load();
    if (matchMedia('(max-width: 899px)').matches) $('#op').scrollIntoView({ block: 'start' });
  },
  // A pending order's own watch is the page's only one of it (see show()).
  update(view, event) {
    seen(view, event);
    onUpdate(view, event);
  },
  connection(id, s) { if (id && id === state.id) setConnection(s); },
  changed() { recent.render(); },
  select,
});
const recent = createRecent(herald, orders, { selected: () => state.id, select });
const decider = createDecider(herald, { describe: (v) => itemsText(v.input && v.input.items) });
const inbox = createInbox({
  me,
  selected: () => state.id,
  open: select,
  // The farewell email goes out as a deletion ends: look for it then, and once more a little later.
  onFinal() { loadOutbox(); setTimeout(loadOutbox, 2000); },
});

/* ---------- which operation is shown (kept in the URL hash) ---------- */
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
  recent.render();
  inbox.render();
  renderOp(null, id);
  setConnection('idle');
  if (!id) return;
  // An order still pending is watched by its optimistic change already: one stream, not two.
  const pending = orders.watching(id);
  if (pending) {
    if (pending.view) onUpdate(pending.view, null);
    setConnection(pending.conn);
    return;
  }
  state.stop = herald.watchOperation(id, (view, event) => { seen(view, event); onUpdate(view, event); },
    { onConnection: setConnection, reportLag: true });
}

/** Every view of an operation the page watches: one awaiting a choice asks for it. */
function seen(view, event) {
  decider.offer(view);
  if (event && event.type === 'decided') decider.decided(view, event);
}

function onUpdate(view, event) {
  if (view.id !== state.id) return;
  state.view = view;
  renderOp(view, state.id);
  recent.saw(view);
  if (event) {
    announce(event.message);
    if (isFinal(event.type)) { recent.load(); loadOutbox(); lateLook(view.id); }
  }
}

// Some news comes after the end (the farewell email goes out, then the
// address is erased), when the stream is already closed: look a few times more.
function lateLook(id) {
  for (const ms of [1000, 3000, 7000]) setTimeout(() => { if (state.id === id) refetch(id); }, ms);
}
async function refetch(id) {
  try {
    const v = await herald.get(id);
    if (state.id !== id || !state.view) return;
    const seenSeq = state.view.last_seq;
    state.view = v;
    renderOp(v, id);
    for (const e of v.timeline) if (e.seq > seenSeq) { announce(e.message); if (e.type === 'redacted') loadOutbox(); }
  } catch (_) { /* the view stays as it was */ }
}

function setConnection(s) {
  const el = $('#conn');
  const shown = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting' : 'idle';
  el.dataset.state = shown;
  el.textContent = t('conn.' + shown);
  if (s === 'not-found') {
    $('#op-title').textContent = t('not-found');
    showAlert(t('no-such-operation', { id: state.id }));
  }
}

$('#op-notices').addEventListener('click', (ev) => {
  const shown = ev.target.closest('[data-op]');
  if (shown) select(shown.dataset.op);
  // Focus goes back to the title after: the button goes once the choice is made.
  if (ev.target.closest('[data-choose]') && state.view) decider.open(state.view, $('#op-title'));
});

$('#cancel').addEventListener('click', async (ev) => {
  const btn = ev.currentTarget;
  if (!state.id || btn.getAttribute('aria-disabled') === 'true') return;
  btn.setAttribute('aria-disabled', 'true');
  try {
    // What follows (undoing, then "cancelled") arrives as events like everything else.
    await herald.cancel(state.id, t('cancel-reason'));
  } catch (e) { showAlert(problemText(e)); } finally { btn.removeAttribute('aria-disabled'); }
});

/* ---------- the forms ---------- */
$('#order-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const customer = me(), items = basket();
  const card = $('#card').value.replace(/\D/g, '');
  if (!customer) return showAlert(t('need-name'));
  if (!items.length) return showAlert(t('need-item'));
  if (!card) return showAlert(t('need-card'));
  // The basket empties at once; a second click finds it empty, so an order is never sent twice.
  orders.place({ customer, items, card });
});
document.querySelectorAll('[data-card]').forEach((b) => b.addEventListener('click', () => { $('#card').value = b.dataset.card; }));

// One Idempotency-Key per intended deletion: kept if the request has to be
// sent again (a click while waiting, a lost answer), new once it was
// accepted or the form changed, so a double click never starts two.
const accountForm = $('#account-form');
accountForm.addEventListener('input', () => { accountForm.key = null; });
accountForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user_id = me(), email = $('#email').value.trim();
  if (!user_id) return showAlert(t('need-name'));
  if (!email) return showAlert(t('need-email'));
  const btn = accountForm.querySelector('[type=submit]');
  // aria-disabled rather than disabled: a disabled button would drop keyboard focus.
  if (btn.getAttribute('aria-disabled') === 'true') return;
  btn.setAttribute('aria-disabled', 'true');
  accountForm.key = accountForm.key || newKey();
  try {
    const view = await herald.start('delete-account', { user_id, email }, { idempotencyKey: accountForm.key });
    accountForm.key = null;
    hideAlert();
    announce(t('request-received', { label: view.label }));
    select(view.id);
    recent.load();
    if (matchMedia('(max-width: 899px)').matches) $('#op').scrollIntoView({ block: 'start' });
  } catch (e) {
    showAlert(problemText(e), e.operationId ? () => select(e.operationId) : null);
  } finally {
    btn.removeAttribute('aria-disabled');
  }
});

/* ---------- who you are ---------- */
function me() { return $('#me').value.trim(); }
function showMe() { document.querySelectorAll('[data-me]').forEach((el) => { el.textContent = me() || t('nobody-yet'); }); }
try { const saved = localStorage.getItem('herald-demo-me'); if (saved) $('#me').value = saved; } catch (_) { /* private mode */ }
let meTimer = 0;
$('#me').addEventListener('input', () => {
  showMe();
  accountForm.key = null; // a different person: a different request
  try { localStorage.setItem('herald-demo-me', me()); } catch (_) { /* private mode */ }
  clearTimeout(meTimer);
  meTimer = setTimeout(inbox.connect, 400);
});
$('#me').addEventListener('change', () => { clearTimeout(meTimer); if (me() !== inbox.user()) inbox.connect(); });

/* ---------- start ---------- */
showMe();
recent.load();
show(fromHash());
inbox.connect();
loadOutbox();
