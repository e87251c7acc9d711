// The choice when requests collide (`on_conflict = "ask"`): a modal dialog
// for an operation the page watches that is `awaiting_decision`. It shows
// both requests (the running one's label and steps, when herald lets this
// person see it), the two choices and what each does, the time left and
// what happens by default. The choice goes to POST /v1/operations/{id}:resolve.
// Escape, or "Decide later", closes it with no choice made; the operation
// view keeps a button to open it again. If time runs out while it is open,
// it says which default was applied and why, in herald's words.
//
// A native <dialog> opened with showModal(): the rest of the page is inert
// and it sits on top; Tab is kept inside by hand, since the browser would
// otherwise move on to its own controls.

import { $, announce, esc, problemText, setHTML, timeTag } from './dom.js';
import { ifNoChoiceHTML, statusText } from './view.js';
import { html, named, t } from './words.js';

/** `herald`: the page's client; `describe(view)`: what the request is, in words ("Tea × 1"), or ''. */
export function createDecider(herald, { describe }) {
  const dlg = $('#decide');
  /** The dialog's operation: { id, view, opener, phase: ask | sending | decided }; null when closed. */
  let cur = null;
  // Closed with no choice made: not opened again by itself (the operation view has a button for it).
  const dismissed = new Set();

  /** A view of an operation the page watches: asks, if it awaits a choice and was not put off. */
  function offer(view) {
    if (cur) {
      if (cur.id !== view.id || cur.phase !== 'ask') return;
      cur.view = view;
      // Ended another way (cancelled, say): nothing is left to choose. A
      // choice made or a default applied comes as its `decided` event.
      if (view.status !== 'awaiting_decision' && !view.timeline.some((e) => e.type === 'decided')) {
        cur.said = t('decide.no-longer');
        dlg.close();
      }
      return;
    }
    if (view.status === 'awaiting_decision' && view.decision && !dismissed.has(view.id)) open(view);
  }

  /** Opens the dialog for `view`; focus goes back to `returnTo` (default: what had it) once it closes. */
  function open(view, returnTo = null) {
    if (cur || view.status !== 'awaiting_decision' || !view.decision) return;
    dismissed.delete(view.id);
    cur = { id: view.id, view, opener: returnTo || document.activeElement, phase: 'ask' };
    const d = view.decision;
    const asked = view.timeline.find((e) => e.type === 'decision_needed');
    $('#decide-h').textContent = t('decide.title');
    $('#decide-said').textContent = asked ? asked.message + '.' : t('decide.earlier-still');
    setHTML($('#decide-time'), ifNoChoiceHTML(d));
    $('#decide-time').hidden = false;
    $('#decide-choices').hidden = false;
    $('#decide-status').textContent = '';
    $('#decide-error').hidden = true;
    $('#decide-close').textContent = t('decide.later');
    setHTML($('#decide-new'), requestHTML(view, t('decide.not-started')));
    setHTML($('#decide-old'), `<p class="hint">${esc(t('decide.looking-up'))}</p>`);
    $('#decide-reqs').hidden = false;
    enable(true);
    dlg.showModal();
    // The default is the choice of least surprise: it is where the keyboard starts.
    dlg.querySelector(`[data-choice="${d.default}"]`).focus();
    // The running one moves on while the person reads: keep what they read true.
    const c = cur;
    const look = () => { if (cur === c && c.phase === 'ask') earlier(c, d.with); else clearInterval(c.timer); };
    c.timer = setInterval(look, 3000);
    look();
  }

  /** The running request, if this person may see it (herald leaves `with` out otherwise). */
  async function earlier(c, id) {
    let shown = `<p>${esc(t('decide.earlier-hidden'))}</p>`;
    if (id) {
      try {
        const v = await herald.get(id);
        shown = requestHTML(v, statusText(v.status) + '.');
      } catch (_) { /* not visible, or gone: say only what is known */ }
    }
    if (cur === c && c.phase === 'ask') setHTML($('#decide-old'), shown);
  }

  function requestHTML(v, state) {
    const what = describe(v);
    const steps = v.steps.map((s) => `<li>${esc(s.status === 'succeeded' ? s.done_label : s.label)}: ${esc(named('mini', s.status))}</li>`).join('');
    return `<p><strong>${esc(v.label)}</strong>${what ? ' · ' + esc(what) : ''}</p>${state ? `<p class="hint">${esc(state)}</p>` : ''}
      <p class="hint">${html('decide.started', { time: timeTag(v.created_at) })}</p><ul class="mini">${steps}</ul>`;
  }

  function enable(on) {
    for (const b of dlg.querySelectorAll('[data-choice]')) {
      // aria-disabled rather than disabled: a disabled button would drop the focus out of the dialog.
      if (on) b.removeAttribute('aria-disabled'); else b.setAttribute('aria-disabled', 'true');
    }
  }

  dlg.addEventListener('click', async (ev) => {
    const b = ev.target.closest('[data-choice]');
    if (!b || !cur || cur.phase !== 'ask') return;
    const c = cur, choice = b.dataset.choice;
    c.phase = 'sending';
    enable(false);
    try {
      await herald.resolve(c.id, choice);
      c.said = t(choice === 'replace' ? 'decide.chose-replace' : 'decide.chose-keep');
      dlg.close();
    } catch (e) {
      if (cur !== c) return;
      // 409: the choice was made already, or time ran out first: say which.
      const v = e.status === 409 ? await herald.get(c.id).catch(() => null) : null;
      const decided = v && v.timeline.find((x) => x.type === 'decided');
      if (decided) return showDecided(decided);
      c.phase = 'ask';
      enable(true);
      $('#decide-error').textContent = t('decide.failed', { error: problemText(e) });
      $('#decide-error').hidden = false;
    }
  });

  /** The operation's `decided` event came: by default, the dialog says so; a choice made elsewhere closes it. */
  function decided(view, event) {
    if (!cur || cur.id !== view.id || cur.phase === 'sending' || cur.phase === 'decided') return;
    if (event.by_default) showDecided(event);
    else {
      cur.said = event.message + '.';
      dlg.close();
    }
  }

  function showDecided(event) {
    cur.phase = 'decided';
    $('#decide-h').textContent = t(event.by_default ? 'decide.time-ran-out' : 'decide.already');
    // What the two requests were doing is history now; the outcome is what counts.
    $('#decide-reqs').hidden = true;
    $('#decide-time').hidden = true;
    $('#decide-choices').hidden = true;
    $('#decide-error').hidden = true;
    // Inside the dialog: while it is open, the rest of the page (its live region too) is inert.
    $('#decide-status').textContent = event.message + '.';
    $('#decide-said').textContent = event.message + '.';
    $('#decide-close').textContent = t('decide.ok');
    $('#decide-close').focus();
  }

  $('#decide-close').addEventListener('click', () => dlg.close());
  // Escape closes a modal dialog by itself; every way of closing ends here.
  dlg.addEventListener('close', () => {
    const c = cur;
    cur = null;
    if (!c) return;
    clearInterval(c.timer);
    if (c.phase === 'ask' || c.phase === 'sending') dismissed.add(c.id);
    const back = c.opener && c.opener.isConnected && c.opener !== document.body ? c.opener : $('#op-title');
    back.focus();
    // The page's live region is live again now that the dialog is closed.
    if (c.said) announce(c.said);
    else if (c.phase !== 'decided') announce(t('decide.no-choice-yet'));
  });
  // Tab and Shift+Tab go round the dialog's own controls.
  dlg.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const f = Array.from(dlg.querySelectorAll('button, [href], input, [tabindex]:not([tabindex="-1"])'))
      .filter((el) => el.getClientRects().length > 0);
    if (!f.length) return;
    const first = f[0], last = f[f.length - 1];
    if (ev.shiftKey && (document.activeElement === first || document.activeElement === dlg)) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  });

  return { offer, open, decided, isOpen: () => !!cur };
}
