// The bell: the notifications of the person named at the top.
//
// POST /demo/session gives a user token for that name (the demo's
// stand-in for an application's sign-in); the package's watchInbox then
// reads the first page and follows every change after it. A notification
// is rewritten in place as its operation moves, so changes replace by id.

import { Herald, isFinal } from './herald.js';
import { $, announce, esc, problemText, setHTML, showAlert, timeTag } from './dom.js';
import { t } from './words.js';

/**
 * `me()`: the name at the top; `selected()`: the operation shown; `open(id)`:
 * shows an operation; `onFinal()`: an operation of this person's ended.
 */
export function createInbox({ me, selected, open, onFinal }) {
  const inbox = { off: false, gen: 0, user: null, herald: null, stop: null, items: new Map(), unread: 0, retry: 0 };

  function disconnect() {
    if (inbox.stop) { inbox.stop(); inbox.stop = null; }
    clearTimeout(inbox.retry);
  }
  const later = (gen) => { if (gen === inbox.gen) { disconnect(); inbox.retry = setTimeout(connect, 5000); } };

  async function connect() {
    if (inbox.off) return;
    const gen = ++inbox.gen, user = me();
    disconnect();
    if (!user) { inbox.user = null; inbox.items = new Map(); inbox.unread = 0; render(); return; }
    let s;
    try {
      const r = await fetch('/demo/session', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ user }) });
      if (gen !== inbox.gen) return;
      if (r.status === 404 || r.status === 405) { inbox.off = true; $('#bell').hidden = true; closePanel(false); return; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      s = await r.json();
    } catch (_) {
      return later(gen);
    }
    if (gen !== inbox.gen) return;
    if (inbox.user !== s.user) inbox.items = new Map();
    inbox.user = s.user;
    inbox.herald = new Herald({ token: s.token });
    inbox.stop = inbox.herald.watchInbox((all, change) => {
      if (gen !== inbox.gen) return;
      if (!change) {
        inbox.items = new Map(all.items.map((n) => [n.id, n]));
        inbox.unread = all.unread;
        $('#bell').hidden = false;
        render();
      } else changed(change);
    }, {
      onConnection(state, error) {
        // A token herald no longer takes (say it expired), or a refusal for good: start over in a while.
        if (state === 'refused' || state === 'not-found' || (error && error.status === 401)) later(gen);
      },
    });
  }

  function changed({ notification: n, unread }) {
    const before = inbox.items.get(n.id);
    inbox.items.set(n.id, n);
    if (typeof unread === 'number') inbox.unread = unread;
    render();
    // The timeline already tells the selected operation's news; the others get one short sentence.
    if (!n.read && n.operation_id !== selected() && (!before || before.body !== n.body)) announce(t('new-notice', { title: n.title, body: n.body }));
    if (isFinal(n.trigger)) onFinal();
  }

  // Colour tells the level; words say it too where it matters.
  const levelWord = (n) => n.needs_attention ? t('needs-attention') : ['warning', 'error'].includes(n.level) ? t('level.' + n.level) : '';
  function render() {
    const bell = $('#bell'), count = $('#bell-count');
    bell.setAttribute('aria-label', inbox.unread ? t('bell-unread', { n: inbox.unread }) : t('bell-none-unread'));
    count.textContent = inbox.unread > 99 ? '99+' : String(inbox.unread);
    count.hidden = !inbox.unread;
    const items = Array.from(inbox.items.values()).sort((a, b) => b.version - a.version);
    $('#notif-empty').hidden = items.length > 0;
    $('#read-all').hidden = !inbox.unread;
    setHTML($('#notif-list'), items.map((n) => `<li><button type="button" class="nt l-${esc(n.level)}${n.read ? '' : ' unread'}${n.needs_attention ? ' attn' : ''}" data-nt="${esc(n.id)}" data-op="${esc(n.operation_id)}"${n.operation_id === selected() ? ' aria-current="true"' : ''}>
      <span class="dot" aria-hidden="true"></span><span class="t">${n.read ? '' : `<span class="sr-only">${esc(t('unread'))} </span>`}${esc(n.title)}</span>${timeTag(n.updated_at)}
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
    const id = b.dataset.nt;
    closePanel(false);
    open(b.dataset.op);
    $('#op-title').focus();
    const n = inbox.items.get(id);
    if (n && !n.read) {
      try {
        const c = await inbox.herald.markRead(id);
        inbox.items.set(c.notification.id, c.notification);
        inbox.unread = c.unread;
        render();
      } catch (e) { showAlert(problemText(e)); }
    }
  });
  $('#read-all').addEventListener('click', async () => {
    try {
      const r = await inbox.herald.markAllRead();
      for (const n of inbox.items.values()) n.read = true;
      inbox.unread = r.unread;
      render();
      announce(t('all-read'));
      $('#np-h').focus(); // the button just disappeared
    } catch (e) { showAlert(problemText(e)); }
  });

  return { connect, render, closePanel, user: () => inbox.user };
}
