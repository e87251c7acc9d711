// "Recent operations": herald's list (GET /v1/operations), with the
// orders this page placed laid over it: pending at once, before herald has
// answered, and rolled back with the reason when that is how they ended.

import { isFinal } from './herald.js';
import { $, clock, esc, setHTML } from './dom.js';
import { itemsText, rollbackHTML } from './order.js';
import { statusText } from './view.js';
import { t } from './words.js';

/** `orders`: the page's own (order.js); `selected()`: the operation shown; `select(id)` shows one. */
export function createRecent(herald, orders, { selected, select }) {
  let recent = [], loadedAt = 0;

  async function load() {
    loadedAt = Date.now();
    try {
      recent = (await herald.list({ limit: 10 })).items;
      render();
    } catch (_) { /* the list is a convenience: the operation view reports problems */ }
  }
  // Keeps badges of operations nobody is watching honest, without fast polling.
  setInterval(() => {
    const open = recent.some((o) => !isFinal(o.status) && o.id !== selected());
    if (!document.hidden && open && Date.now() - loadedAt >= 10000) load();
  }, 10000);

  /** Keeps the list's badge for an operation in step with a view of it, without asking herald. */
  function saw(view) {
    const i = recent.findIndex((o) => o.id === view.id);
    if (i >= 0 && recent[i].status !== view.status) { recent[i] = view; render(); }
  }

  function render() {
    const listed = new Set(recent.map((o) => o.id));
    // The page's own orders herald's list does not have yet come first: they are the newest.
    const rows = [
      ...orders.entries.filter((e) => !e.id || !listed.has(e.id)).map((e) => row(e.view, e)),
      ...recent.map((o) => {
        const e = orders.entry(o.id);
        return row(e && e.view ? e.view : o, e); // its watch's view is the newer
      }),
    ];
    $('#recent-empty').hidden = rows.length > 0;
    setHTML($('#recent-list'), rows.join(''));
  }

  function row(op, entry) {
    const status = op ? op.status : 'accepted';
    let badges = `<span class="badge b-${esc(status)}">${esc(statusText(status))}</span>`;
    if (entry && entry.state === 'pending') {
      badges = `<span class="badge b-pending">${esc(t('pending'))}</span>` + (status === 'awaiting_decision' ? ` ${badges}` : '');
    } else if (entry && (entry.state === 'rolled-back' || entry.state === 'refused')) {
      badges = `<span class="badge b-rolled-back">${esc(t(entry.state === 'refused' ? 'not-placed' : 'rolled-back'))}</span>`;
    }
    const who = (op && op.subject) || (entry && entry.subject);
    const head = `<span><strong>${esc(op ? op.label : t('your-order'))}</strong>${who ? ' · ' + esc(who) : ''}</span>
      <span class="row">${badges}<small>${clock(op ? op.created_at : entry.at)}</small></span>${entry ? `<span class="what">${esc(itemsText(entry.items))}</span>` : ''}`;
    // Until herald has answered there is nothing to show but this entry.
    const item = op
      ? `<button type="button" class="op-item" data-op="${esc(op.id)}"${op.id === selected() ? ' aria-current="true"' : ''}>${head}</button>`
      : `<div class="op-item">${head}</div>`;
    const after = entry && (entry.state === 'rolled-back' || entry.state === 'refused') ? rollbackHTML(entry) : '';
    return `<li${entry ? ` class="o-${entry.state}"` : ''}>${item}${after}</li>`;
  }

  $('#recent-list').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-op]');
    if (b) select(b.dataset.op);
  });

  return { load, render, saw };
}
