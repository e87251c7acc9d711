/* The operator page (operator.html): herald's own API read with an admin
 * token every few seconds, drawn as tables and small charts. */
'use strict';

const REFRESH_MS = 5000;
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
let token = sessionStorage.getItem('herald-operator-token') || '';
let timer = 0;

async function get(path, accept) {
  const headers = { accept: accept || 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(path, { cache: 'no-store', headers });
  if (r.status === 401 || r.status === 403) throw new Error('This needs an admin token: enter one above.');
  if (!r.ok) throw new Error(path + ' answered ' + r.status);
  return accept ? r.text() : r.json();
}

/* ---------- /metrics, read as Prometheus reads it ---------- */

// `name{a="x",b="y"} value` lines into [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[3] || '')) !== null) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

const sum = (samples, name, match) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);

// A workflow's flow-time buckets, all outcomes together: [[le, cumulative count]] ascending.
function buckets(samples, workflow) {
  const by = new Map();
  for (const s of samples) {
    if (s.name !== 'herald_operation_duration_seconds_bucket' || s.labels.workflow !== workflow) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    by.set(le, (by.get(le) || 0) + s.value);
  }
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

// Prometheus's histogram_quantile: linear within the bucket the rank falls in.
function quantile(q, bs) {
  const total = bs.length ? bs[bs.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, cum] of bs) {
    if (cum >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / Math.max(cum - below, 1e-9));
    }
    lower = le; below = cum;
  }
  return lower;
}

function seconds(s) {
  if (s == null) return '–';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return (Math.round(s * 10) / 10) + ' s';
  if (s < 3600) return Math.round(s / 60) + ' min';
  return (Math.round(s / 360) / 10) + ' h';
}

// A workflow's `expected_within` as herald writes it ("30s", "1h 30m"), in seconds.
function span(v) {
  if (typeof v === 'number') return v / 1000;
  const units = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600, d: 86400 };
  let total = null;
  for (const m of String(v || '').matchAll(/(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)/g)) total = (total || 0) + Number(m[1]) * units[m[2]];
  return total;
}

/* ---------- the small chart: how flow times fall, against the expected window ---------- */

function chart(bs, expected, label) {
  const finite = bs.filter(([le]) => le !== Infinity);
  if (!finite.length) return '';
  const counts = finite.map(([le, cum], i) => [le, cum - (i ? finite[i - 1][1] : 0)]);
  const over = bs.length ? bs[bs.length - 1][1] - finite[finite.length - 1][1] : 0;
  if (over) counts.push([Infinity, over]);
  const max = Math.max(1, ...counts.map((c) => c[1]));
  const w = 300, h = 90, gap = 2, bw = (w - gap * counts.length) / counts.length;
  let bars = '';
  counts.forEach(([le, n], i) => {
    const bh = Math.round((n / max) * (h - 20));
    const late = expected != null && le > expected;
    bars += `<rect x="${(i * (bw + gap)).toFixed(1)}" y="${h - 14 - bh}" width="${bw.toFixed(1)}" height="${bh}" fill="${late ? '#c4232d' : '#0969da'}"><title>${n} up to ${le === Infinity ? 'more' : seconds(le)}</title></rect>`;
  });
  const axis = `<text x="0" y="${h - 2}" font-size="9" fill="#57606a">${seconds(finite[0][0])}</text>` +
    `<text x="${w}" y="${h - 2}" font-size="9" fill="#57606a" text-anchor="end">${over ? 'over ' : ''}${seconds(finite[finite.length - 1][0])}</text>`;
  return `<figure><svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(label)}">${bars}${axis}</svg>` +
    `<figcaption>Flow times by bucket${expected != null ? '; red: past the expected window' : ''}.</figcaption></figure>`;
}

/* ---------- sections ---------- */

function renderWorkflows(samples, workflows) {
  const rows = workflows.map((wf) => {
    const name = wf.name;
    const bs = buckets(samples, name);
    const expected = span(wf.definition && wf.definition.expected_within);
    const outcome = (o) => sum(samples, 'herald_operations_finished_total', { workflow: name, outcome: o });
    const [ok, failed, cancelled] = ['succeeded', 'failed', 'cancelled'].map(outcome);
    const finished = ok + failed + cancelled;
    const met = sum(samples, 'herald_operations_finished_total', { workflow: name, expected: 'met' });
    const missed = sum(samples, 'herald_operations_finished_total', { workflow: name, expected: 'missed' });
    const [p50, p95, p99] = [0.5, 0.95, 0.99].map((q) => quantile(q, bs));
    const retries = sum(samples, 'herald_step_retries_total', { workflow: name });
    const conflicts = sum(samples, 'herald_conflicts_total', { workflow: name });
    const held = sum(samples, 'herald_steps_finished_total', { workflow: name, outcome: 'held' });
    const mark = (p) => (expected != null && p != null ? (p > expected ? ' class="num miss"' : ' class="num met"') : ' class="num"');
    const inTime = met + missed ? Math.round((100 * met) / (met + missed)) + ' %' : '–';
    const label = `${wf.label || name}: ${finished} finished; flow time p50 ${seconds(p50)}, p95 ${seconds(p95)}, p99 ${seconds(p99)}` +
      (expected != null ? `; expected within ${seconds(expected)}` : '');
    return `<article class="wf" aria-labelledby="wf-${esc(name)}">
      <h3 id="wf-${esc(name)}">${esc(wf.label || name)} <code>${esc(name)}</code></h3>
      <div class="wf-body"><div class="scroll" tabindex="0" role="region" aria-label="${esc(name)}: figures"><table>
        <thead><tr><th scope="col">Finished</th><th scope="col" class="num">Succeeded</th><th scope="col" class="num">Failed</th>
          <th scope="col" class="num">Cancelled</th><th scope="col" class="num">In time</th><th scope="col" class="num">p50</th>
          <th scope="col" class="num">p95</th><th scope="col" class="num">p99</th><th scope="col" class="num">Expected</th>
          <th scope="col" class="num">Retries</th><th scope="col" class="num">Conflicts</th><th scope="col" class="num">Held</th></tr></thead>
        <tbody><tr><td class="num">${finished}</td><td class="num">${ok}</td><td class="num">${failed}</td><td class="num">${cancelled}</td>
          <td class="num">${inTime}</td><td${mark(p50)}>${seconds(p50)}</td><td${mark(p95)}>${seconds(p95)}</td><td${mark(p99)}>${seconds(p99)}</td>
          <td class="num">${expected != null ? seconds(expected) : 'not set'}</td><td class="num">${retries}</td>
          <td class="num">${conflicts}</td><td class="num">${held}</td></tr></tbody>
      </table></div>${chart(bs, expected, label)}</div></article>`;
  });
  $('#workflows').innerHTML = rows.join('') || '<p class="empty">No workflows are loaded.</p>';
}

function renderFlagged(late, held) {
  const seen = new Map();
  for (const [op, why] of [...late.map((o) => [o, 'late']), ...held.map((o) => [o, 'needs a person'])]) {
    const row = seen.get(op.id) || { op, why: [] };
    row.why.push(why);
    seen.set(op.id, row);
  }
  if (!seen.size) { $('#flagged').innerHTML = '<p class="empty">None: nothing is late, nothing waits for a person.</p>'; return; }
  const rows = [...seen.values()].map(({ op, why }) => {
    const trace = op.trace ? op.trace.trace_id : op.id.slice(3);
    return `<tr><td><a href="/#${esc(op.id)}">${esc(op.id)}</a></td><td>${esc(op.workflow)}</td><td>${esc(op.status)}</td>
      <td>${esc(why.join(', '))}</td><td><time datetime="${esc(op.created_at)}">${esc(new Date(op.created_at).toLocaleString())}</time></td>
      <td><code>${esc(trace)}</code></td></tr>`;
  });
  $('#flagged').innerHTML = `<div class="scroll" tabindex="0" role="region" aria-label="Late or held operations"><table><thead><tr><th scope="col">Operation (its timeline)</th><th scope="col">Workflow</th>
    <th scope="col">Status</th><th scope="col">Why</th><th scope="col">Started</th><th scope="col">Trace id</th></tr></thead>
    <tbody>${rows.join('')}</tbody></table></div>`;
}

function renderDead(samples) {
  const kinds = samples.filter((s) => s.name === 'herald_dead_letters' && s.value > 0);
  $('#dead').innerHTML = kinds.length
    ? `<table><thead><tr><th scope="col">Kind</th><th scope="col" class="num">Waiting</th></tr></thead><tbody>${
      kinds.map((s) => `<tr><td>${esc(s.labels.kind)}</td><td class="num">${s.value}</td></tr>`).join('')}</tbody></table>
      <p class="hint">Read and redrive them at <a href="/v1/dead-letters">/v1/dead-letters</a>.</p>`
    : '<p class="empty">None.</p>';
}

function renderServices(list) {
  const rows = list.items.map((s) => {
    const up = s.instances.filter((i) => i.health !== 'down' && !i.ejected_for_ms).length;
    return `<tr><td>${esc(s.name)}</td><td class="h-${esc(s.circuit.state)}">${esc(s.circuit.state.replace('_', ' '))}${
      s.circuit.reason ? ': ' + esc(s.circuit.reason) : ''}</td><td class="num">${up} of ${s.instances.length}</td>
      <td class="num">${s.in_flight} / ${s.limit}</td><td class="num">${s.waiting}</td></tr>`;
  });
  $('#services').innerHTML = rows.length
    ? `<div class="scroll" tabindex="0" role="region" aria-label="Services"><table><thead><tr><th scope="col">Service</th><th scope="col">Circuit</th><th scope="col" class="num">Instances up</th>
      <th scope="col" class="num">In flight / limit</th><th scope="col" class="num">Waiting</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
    : '<p class="empty">No services are registered.</p>';
}

async function load() {
  clearTimeout(timer);
  try {
    const [text, workflows, late, held, services] = await Promise.all([
      get('/metrics', 'application/openmetrics-text, text/plain'),
      get('/v1/workflows'),
      get('/v1/operations?flag=late&limit=100'),
      get('/v1/operations?flag=needs_attention&limit=100'),
      get('/v1/services'),
    ]);
    const samples = parseMetrics(text);
    renderWorkflows(samples, workflows);
    renderFlagged(late.items, held.items);
    renderDead(samples);
    renderServices(services);
    $('#alert').hidden = true;
    $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    $('#alert-text').textContent = e.message;
    $('#alert').hidden = false;
  }
  timer = setTimeout(load, REFRESH_MS);
}

$('#token').value = token;
$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem('herald-operator-token', token);
  load();
});
$('#refresh').addEventListener('click', load);
load();
