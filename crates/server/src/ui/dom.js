// What the demo page's modules share: finding and filling elements, times
// in the reader's own clock, the aria-live announcements and the alert.

export const $ = (sel) => document.querySelector(sel);

export const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

/** A time of herald's in the reader's local time, 24-hour, with seconds unless `short`. */
export const clock = (t, short = false) => t ? new Date(t).toLocaleTimeString([], short
  ? { hour: '2-digit', minute: '2-digit', hour12: false }
  : { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }) : '';

// Errors arrive as sentences; drop the final stop so "…: <error>. Trying again" reads once.
export const bare = (e) => String(e || '').trim().replace(/[.!]+$/, '');

export const timeTag = (t, short = false) => t ? `<time datetime="${esc(t)}">${clock(t, short)}</time>` : '';

// A countdown the ticker below keeps current, so "trying again" stays true without a refetch.
export const countdown = (t) => t ? ` <span data-until="${esc(t)}">${until(t)}</span>` : '';
function until(t) {
  const s = Math.ceil((new Date(t) - Date.now()) / 1000);
  return s > 0 ? `(in ${s} s)` : '(now)';
}
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
