// What the demo page's modules share: finding and filling elements, times
// in the reader's own clock and language, the aria-live announcements and
// the alert.

import { clockTime, has, inSeconds, t } from './words.js';

export const $ = (sel) => document.querySelector(sel);

export const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

/** A time of herald's in the reader's local time, 24-hour, with seconds unless `short`. */
export const clock = (at, short = false) => at ? clockTime(new Date(at), short) : '';

// Errors arrive as sentences; drop the final stop so "…: <error>. Trying again" reads once.
export const bare = (e) => String(e || '').trim().replace(/[.!]+$/, '');

export const timeTag = (at, short = false) => at ? `<time datetime="${esc(at)}">${clock(at, short)}</time>` : '';

// A countdown the ticker below keeps current, so "trying again" stays true without a refetch.
export const countdown = (at) => at ? ` <span data-until="${esc(at)}">${until(at)}</span>` : '';
const until = (at) => `(${inSeconds(Math.ceil((new Date(at) - Date.now()) / 1000))})`;
setInterval(() => document.querySelectorAll('[data-until]').forEach((el) => { el.textContent = until(el.dataset.until); }), 1000);

// Only touch the DOM when the markup changed, so focus and scroll survive redraws.
export function setHTML(el, html) { if (el._html !== html) { el._html = html; el.innerHTML = html; } }

/** One sentence for screen readers, through the page's aria-live region. */
export function announce(sentence) {
  if (!sentence) return;
  const live = $('#live');
  const p = document.createElement('p');
  p.textContent = sentence;
  live.appendChild(p); // appended, not replaced, so a burst of events is read one after another
  while (live.childElementCount > 5) live.firstElementChild.remove();
}

/**
 * What to tell the reader of a refusal (a HeraldError): the page's own
 * words for the problems a person can meet here, in their language;
 * herald's detail for any other.
 */
export function problemText(e) {
  const type = String((e && e.type) || '');
  const key = 'problem.' + type.slice(type.lastIndexOf(':') + 1);
  return type.startsWith('urn:herald:') && has(key) ? t(key) : t('problem.other', { detail: (e && e.message) || String(e) });
}

/* The alert (a problem's detail); `show`, when given, is what its "Show that request" button does. */
export function showAlert(text, show = null) {
  $('#alert-text').textContent = text;
  const button = $('#alert-show');
  button.hidden = !show;
  button.onclick = () => { hideAlert(); show(); };
  $('#alert').hidden = false;
}
export function hideAlert() { $('#alert').hidden = true; }
$('#alert-close').addEventListener('click', hideAlert);
