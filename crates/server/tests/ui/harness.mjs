// What the browser checks share (demo.spec.mjs, decide.spec.mjs,
// german.spec.mjs, operator.spec.mjs): the browser, a page that records script errors and
// Content-Security-Policy refusals, named checks, waits with deadlines,
// what the aria-live region was given, axe-core, screenshots.
//
// playwright-core is looked up next to this file first, then in the current
// directory; axe-core in the current directory. CHROMIUM overrides the
// browser path; HERALD_URL is the herald under test.

import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (_) {
    return createRequire(path.join(process.cwd(), 'noop.js'))('playwright-core');
  }
}

export const base = (process.env.HERALD_URL || 'http://127.0.0.1:7171').replace(/\/+$/, '');
// This file is crates/server/tests/ui/harness.mjs: the repository is four levels up from its folder.
export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const outDir = path.join(repo, 'target', 'ui-test-output');
mkdirSync(outDir, { recursive: true });
const axePath = path.join(process.cwd(), 'node_modules', 'axe-core', 'axe.min.js');
const { chromium } = await loadPlaywright();

let passed = 0, failed = 0;
export function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`); }
}

export async function shot(page, name, fullPage = false) {
  try { await page.screenshot({ path: path.join(outDir, name), fullPage }); } catch (e) { check(`screenshot ${name}`, false, e.message); }
}

// Waits for a condition in the page; true if it held before the deadline.
export async function until(page, fn, arg, timeout = 10000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 'raf' }).then(() => true, () => false);
}

// Records every sentence the page gives its aria-live region (#live), so
// one that was read out and then made room for newer ones is still seen.
export async function recordHeard(page) {
  await page.evaluate(() => {
    if (window.__heardObs) return;
    window.__heard = [];
    window.__heardObs = new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) window.__heard.push(n.textContent); });
    window.__heardObs.observe(document.querySelector('#live'), { childList: true });
  });
}
// Waits until a sentence the region was given matches `re`; true if one did before the deadline.
export const heard = (page, re, timeout = 10000) =>
  until(page, (re) => (window.__heard || []).some((t) => new RegExp(re).test(t)), re.source, timeout);
export const allHeard = (page) => page.evaluate(() => (window.__heard || []).join(' | '));

// axe-core on the page as it is: no serious or critical violation. Evaluated
// by the browser's tooling rather than added as a <script>, which the page's
// policy would (rightly) refuse.
export async function checkAxe(page, what) {
  try {
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(readFileSync(axePath, 'utf8'));
    const r = await page.evaluate(() => axe.run());
    const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of bad) console.log(`     axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`);
    check(`axe: no serious or critical violations (${what})`, bad.length === 0, bad.map((v) => v.id).join(', '));
  } catch (e) {
    check(`axe ran (${what})`, false, e.message);
  }
}

// Headless Chromium and a page that records script errors and everything
// its Content-Security-Policy refused, on every load of it. `locale` is the
// browser's language (navigator.languages, Accept-Language, Intl's default),
// such as 'de-DE'; without it, Chromium's own (en-US).
export async function open({ locale } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, ...(locale ? { locale } : {}) });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const refusals = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) refusals.push(m.text()); });
  await page.exposeFunction('__cspRefused', (what) => refusals.push(what));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation',
    (e) => window.__cspRefused(`${e.violatedDirective} refused ${e.blockedURI || 'inline'}`)));
  return { browser, page, errors, refusals };
}

// Closes the browser, says where the screenshots are and how it went, and
// exits 0 only when every check passed.
export async function finish(browser) {
  await browser.close();
  console.log(`screenshots in ${outDir}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
