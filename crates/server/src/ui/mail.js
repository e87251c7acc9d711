// "Demo emails": what herald sent through the demo's own mail server
// (GET /demo/outbox), which keeps them on this machine. Outside the demo
// the route is not there, and the section stays hidden.

import { $, esc, setHTML } from './dom.js';
import { t } from './words.js';

let outboxBusy = false;
export async function loadOutbox() {
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
  let subject = m ? m[1].replace(/\n[ \t]+/g, ' ').trim() : t('no-subject');
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
    return `<li><p class="subj">${esc(subject)}</p><p class="to">${esc(t('mail-to', { to: (m.to || []).join(', ') }))}</p><p class="body">${esc(body)}</p></li>`;
  }).join('') + (mails.length > MAIL_SHOWN ? `<li class="empty">${esc(t('older-mails', { n: mails.length - MAIL_SHOWN }))}</li>` : ''));
}
$('#mail-details').addEventListener('toggle', () => { if ($('#mail-details').open) loadOutbox(); });

