// Placing an order from the basket, optimistically (the package's
// `optimistic`): the basket empties and the order shows in "Recent
// operations" at once, marked pending, while herald does the work. If the
// order fails, is cancelled, or is refused, the change is rolled back where
// the person can see it and hear it: the items go back in the basket, the
// entry says it was rolled back, why (herald's own sentence) and what was
// undone, and the same is announced through the aria-live region. Never
// silently.

import { optimistic } from './herald.js';
import { $, announce, esc, problemText, showAlert } from './dom.js';
import { has, t } from './words.js';

const basketInputs = () => Array.from(document.querySelectorAll('[data-sku]'));

/** What is in the basket: [{ sku, qty }] with qty > 0. */
export function basket() {
  return basketInputs().map((i) => ({ sku: i.dataset.sku, qty: parseInt(i.value, 10) || 0 })).filter((i) => i.qty > 0);
}

// Items are added to what is there, not set: the person may have filled the basket again meanwhile.
function moveBasket(items, sign) {
  for (const input of basketInputs()) {
    const item = items.find((i) => i.sku === input.dataset.sku);
    if (item) input.value = String(Math.min(9, Math.max(0, (parseInt(input.value, 10) || 0) + sign * item.qty)));
  }
}

/** "Tea × 1, Mug × 2", in the names the shop shows. */
export function itemsText(items) {
  const name = (sku) => (has('item.' + sku) ? t('item.' + sku) : sku);
  return (items || []).map((i) => `${name(i.sku)} × ${i.qty}`).join(', ');
}

/** A sentence under the basket: what just happened to it (empty: nothing to say). */
function basketNote(text) {
  const note = $('#basket-note');
  note.textContent = text;
  note.hidden = !text;
}

/**
 * The page's orders. Its hooks: `started(view)` once herald accepted one;
 * `update(view, event)` and `connection(id, state)` as its watch tells;
 * `changed()` when an entry changed (redraw the list); `select(id)` shows
 * an operation.
 */
export function createOrders(herald, { started, update, connection, changed, select }) {
  /** Newest first: { id, subject, items, at, state: pending|placed|rolled-back|refused|unknown, view, conn, reason, undone }. */
  const entries = [];

  function place(input) {
    const entry = { id: null, subject: input.customer, items: input.items, at: new Date().toISOString(), state: 'pending', view: null, conn: 'idle' };
    optimistic(herald, {
      label: t('your-order'),
      // This watch is the page's only one of the order: it reports what the page showed.
      reportLag: true,
      apply() {
        moveBasket(entry.items, -1);
        basketNote('');
        entries.unshift(entry);
        changed();
      },
      async start(key) {
        const view = await herald.start('place-order', input, { idempotencyKey: key });
        Object.assign(entry, { id: view.id, view });
        changed();
        started(view);
        return view;
      },
      onUpdate(view, event) {
        entry.view = view;
        update(view, event);
      },
      onConnection(state) {
        entry.conn = state;
        connection(entry.id, state);
      },
      confirm(view) {
        Object.assign(entry, { state: 'placed', view });
        changed();
      },
      rollback(r) {
        moveBasket(entry.items, +1);
        // A refusal is told in the page's words (herald's detail is for developers); an
        // order that ran is told in herald's, which are in the order's language.
        const reason = r.error ? problemText(r.error) : r.reason;
        Object.assign(entry, { state: r.status === 'refused' ? 'refused' : 'rolled-back', reason, undone: r.undone, notUndone: r.notUndone });
        if (r.view) entry.view = r.view;
        changed();
        const said = t(r.status === 'refused' ? 'not-placed-said' : 'rolled-back-said', { reason: r.status === 'refused' ? reason : r.announcement })
          + ' ' + t('items-back');
        basketNote(said);
        announce(said);
        const other = r.error && r.error.operationId;
        if (r.error) showAlert(reason, other ? () => select(other) : null);
      },
    }).catch((e) => {
      // The watch was refused or the order is gone: what became of it is not known here.
      entry.state = 'unknown';
      changed();
      showAlert(t('maybe-placed', { error: problemText(e) }));
    });
  }

  return {
    entries,
    place,
    /** The entry of operation `id`, if this page placed it. */
    entry: (id) => entries.find((e) => e.id === id),
    /** The pending order `id`, whose own watch tells the page about it. */
    watching: (id) => entries.find((e) => e.id === id && e.state === 'pending'),
  };
}

/** What a rolled-back entry says under it: why, and what was undone. */
export function rollbackHTML(e) {
  const undone = (e.undone || []).map((u) => `<li>${esc(u.undoneLabel
    ? t('undone-item-how', { label: u.label, how: u.undoneLabel }) : t('undone-item', { label: u.label }))}</li>`).join('');
  const kept = (e.notUndone || []).map((n) => `<li>${esc(t('not-undone-item', { label: n.label, reason: n.reason }))}</li>`).join('');
  const head = t(e.state === 'refused' ? 'not-placed' : 'rolled-back');
  return `<div class="rb"><p><strong>${esc(head)}:</strong> ${esc(e.reason)}</p>${undone || kept ? `<ul>${undone}${kept}</ul>` : ''}
    <p>${esc(t('items-back'))}</p></div>`;
}
