// Browser check of the demo page (crates/server/src/ui/: index.html, app.css and the modules app.js imports).
//
// A standalone Node script, run by `cargo test -p herald --test ui`
// (crates/cli/tests/ui.rs), which starts `herald demo --pace 300ms` on a free
// port and runs this with HERALD_URL set, from target/ui-tools. Through the
// page, as a person would, it covers:
//
//  1. a good order: a step is shown running (spinner), then every step is
//     shown done (checkmark), the log lists the events in order, and the bell
//     panel gets the "done" notification;
//     while it runs, when it is expected (herald's words, the time in the
//     reader's clock), what its deadline would do, and each running step's
//     expected time;
//  2. a declined order, placed optimistically: at once the basket empties
//     and the order is listed pending; then it is rolled back visibly (the
//     basket refilled, the entry saying why and what was undone) and the
//     rollback is announced in the aria-live region; the reservation shown
//     undone, the failure sentence, a reload keeping the operation selected;
//     then the bell: count, list, Escape, mark all read, open an operation;
//  3. an account deletion: the flaky audit step shown retrying ("Attempt 1 of
//     5 failed … Trying again"), then "taking longer than usual", then done;
//     the erased address in the operation view and the farewell email in
//     "Demo emails";
//  4. axe-core at 1280 px and 320 px wide, with an operation selected, with
//     the bell panel closed and open: no "serious" or "critical" violation;
//  5. screenshots of each key moment in target/ui-test-output/ (*.png);
//  6. the Content-Security-Policy: all of the above ran under it with no
//     violation reported, and it does refuse an inline script;
//  7. the lag the page saw between events' commits and showing them was
//     reported to herald, which exports it;
//  8. the package's client as the page loads it (/ui/herald.js), with an
//     end user's token.
//
// The choice when two orders collide is decide.spec.mjs's.
//
// Every wait is a condition with a deadline; the brief states (a step
// running, the retry, the lateness) are caught by a MutationObserver in the
// page, so a state shown for only a few hundred milliseconds is not missed.
// The retry and lateness timings assume the demo runs with --pace 300ms.
//
// To run it by hand:
//   cargo build -p herald && .ci/run installs the tools, or:
//   mkdir -p target/ui-tools && (cd target/ui-tools && npm i playwright-core axe-core)
//   apt-get install -y chromium                       # Debian's, at /usr/bin/chromium
//   target/debug/herald demo --pace 300ms --data-dir /tmp/ui-demo-data --listen 127.0.0.1:7171 &
//   cd target/ui-tools && HERALD_URL=http://127.0.0.1:7171 node ../../crates/server/tests/ui/demo.spec.mjs
// or simply: HERALD_TEST_UI=require cargo test -p herald --test ui -- --nocapture
//
// The browser, the checks and axe-core come from harness.mjs (which says
// where it finds them). Exit code 0 when every check passed, 1 otherwise;
// the last line is "N passed, N failed".

import { allHeard, base, check, checkAxe, finish, heard, open, recordHeard, shot, until } from './harness.mjs';

// Records every state a step (or a notice) of the shown operation passes through,
// so brief states are seen even between two looks from the test.
async function recordStates(page) {
  await page.evaluate(() => {
    if (window.__obs) window.__obs.disconnect();
    const seen = window.__seen = [], keys = new Set();
    const add = (op, status, el) => {
      const text = el.textContent.replace(/\s+/g, ' ').trim(), k = `${op}|${status}|${text}`;
      if (!keys.has(k)) { keys.add(k); seen.push({ op, status, text, spin: !!el.querySelector('svg.spin') }); }
    };
    const snap = () => {
      const op = location.hash.slice(1);
      for (const el of document.querySelectorAll('#op-steps .step')) add(op, (/\bs-([a-z_]+)/.exec(el.className) || [])[1], el);
      for (const el of document.querySelectorAll('#op-notices .notice')) add(op, 'notice', el);
      for (const el of document.querySelectorAll('#op-notices .expect')) add(op, 'expect', el);
    };
    window.__obs = new MutationObserver(snap);
    window.__obs.observe(document.querySelector('#op'), { childList: true, subtree: true, characterData: true });
    snap();
  });
}
// Waits until the recorder saw a state of operation `op` whose status matches and whose text matches `re`.
async function sawState(page, op, status, re, timeout = 15000) {
  return until(page, ({ op, status, re }) => (window.__seen || []).some((e) => e.op === op
    && (!status || e.status === status) && new RegExp(re, 'i').test(e.text)), { op, status, re: re.source }, timeout);
}
const seenStates = (page, op) => page.evaluate((op) => (window.__seen || []).filter((e) => e.op === op), op);

// Records every state the page's own orders pass through in "Recent
// operations" (pending, rolled back…), with how many items the basket held then.
async function recordOrders(page) {
  await page.evaluate(() => {
    if (window.__ordersObs) window.__ordersObs.disconnect();
    const seen = window.__orders = [];
    const snap = () => {
      const basket = Array.from(document.querySelectorAll('[data-sku]'), (i) => Number(i.value) || 0).reduce((a, b) => a + b, 0);
      for (const li of document.querySelectorAll('#recent-list > li[class^="o-"]')) {
        const e = { state: li.className.slice(2), text: li.textContent.replace(/\s+/g, ' ').trim(), basket };
        if (!seen.some((x) => x.state === e.state && x.text === e.text && x.basket === e.basket)) seen.push(e);
      }
    };
    window.__ordersObs = new MutationObserver(snap);
    window.__ordersObs.observe(document.querySelector('#recent-list'), { childList: true, subtree: true, characterData: true });
    snap();
  });
}
const seenOrders = (page) => page.evaluate(() => window.__orders || []);
// A time of herald's as the page shows it: the browser's local time, 24-hour.
const localTime = (page, t) => page.evaluate((t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }), t);

// Clicks the button and waits for the URL hash to name a new operation; returns its id.
async function startOperation(page, button) {
  const before = await page.evaluate(() => location.hash);
  await page.getByRole('button', { name: button }).click();
  await until(page, (h) => /^#op_/.test(location.hash) && location.hash !== h, before);
  return (await page.evaluate(() => location.hash)).slice(1);
}
const getView = async (id) => (await fetch(`${base}/v1/operations/${id}`)).json();

// The page's log against the API's timeline: the same messages, in the same order,
// and every step started before it succeeded.
async function checkLog(page, id, what) {
  const view = await getView(id);
  const shown = (await page.locator('#op-log li span').allTextContents()).map((t) => t.trim());
  const wanted = view.timeline.map((e) => e.message);
  await until(page, (n) => document.querySelectorAll('#op-log li').length >= n, wanted.length, 5000);
  const again = (await page.locator('#op-log li span').allTextContents()).map((t) => t.trim());
  check(`${what}: the log lists every event in order`, JSON.stringify(again) === JSON.stringify(wanted),
    `page: ${JSON.stringify(again.length ? again : shown)} / api: ${JSON.stringify(wanted)}`);
  const at = (type, step) => view.timeline.findIndex((e) => e.type === type && e.step === step);
  const bad = view.steps.filter((s) => !(at('step_started', s.name) >= 0 && at('step_started', s.name) < at('step_succeeded', s.name)));
  check(`${what}: each step started, then succeeded`, bad.length === 0, bad.map((s) => s.name).join(', '));
  return view;
}

// Every step shows done: the "Done" state class, its words and the checkmark, no spinner left.
async function checkAllDone(page, what, count) {
  const steps = await page.evaluate(() => Array.from(document.querySelectorAll('#op-steps .step'), (el) => ({
    done: el.classList.contains('s-succeeded'), said: el.querySelector('.sr-only')?.textContent || '',
    check: !!el.querySelector('svg path[d^="M7.5 12.5"]'), spin: !!el.querySelector('svg.spin') })));
  check(`${what}: every step shows done with a checkmark`, steps.length === count
    && steps.every((s) => s.done && /^Done/.test(s.said) && s.check && !s.spin), JSON.stringify(steps));
}

/* ---------- the run ---------- */
const { browser, page, errors, refusals } = await open();
try {
  await page.goto(base + '/');
  check('the page loads with its two forms', await page.locator('#order-form').isVisible() && await page.locator('#account-form').isVisible());
  check('no alert is shown at first', !(await page.locator('#alert').isVisible()));

  // A customer of its own, so no order collides with someone else's.
  const who = 'ui-test-' + Date.now().toString(36);
  await page.getByLabel('You are').fill(who);
  const bell = page.locator('#bell');
  const panel = page.getByRole('region', { name: 'Notifications' });
  await bell.waitFor({ state: 'visible', timeout: 10000 }).catch(() => {});

  // 1. A good order ticks through its steps: a step is shown running (spinner)
  //    while it goes, then every step done with a checkmark, and the bell gets
  //    the "done" notification.
  {
    await page.getByRole('button', { name: /Good card/ }).click();
    await recordStates(page);
    const id = await startOperation(page, 'Place order');
    check('good order: the URL hash names the operation', /^op_[0-9a-z]+$/i.test(id), id);
    const running = await sawState(page, id, 'running', /^In progress: .+…/);
    await shot(page, 'order-ticking.png');
    const states = await seenStates(page, id);
    check('good order: a step was shown running, with a spinner', running && states.some((e) => e.status === 'running' && e.spin),
      JSON.stringify(states.map((e) => e.status + ': ' + e.text)));

    // Expectations up front: herald's words for the window and when, in the
    // reader's own clock; what the deadline would do, and when; and each
    // running step's own expected time.
    const started = await getView(id);
    const by = await localTime(page, started.expected_by), deadline = await localTime(page, started.deadline_at);
    const expected = `Usually takes under 20 seconds · expected by ${by}`;
    const told = await sawState(page, id, 'expect', new RegExp('^' + expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$'));
    check(`good order: it says when it is expected ("${expected}")`, told,
      JSON.stringify(states.filter((e) => e.status === 'expect').map((e) => e.text)));
    check('good order: it says what happens past the deadline, and when', (await seenStates(page, id)).some((e) => e.status === 'expect'
      && e.text === `${started.expectation.if_late} Deadline: ${deadline}.`),
      JSON.stringify((await seenStates(page, id)).filter((e) => e.status === 'expect').map((e) => e.text)));
    check('good order: a running step says when it is expected', await sawState(page, id, 'running', /Expected by \d\d:\d\d:\d\d$/, 5000),
      JSON.stringify((await seenStates(page, id)).filter((e) => e.status === 'running').map((e) => e.text)));
    await page.locator('.outcome.succeeded').waitFor({ timeout: 30000 }).catch(() => {});
    await shot(page, 'order-done.png');
    check('good order: the outcome says it is done', /done/i.test(await page.locator('.outcome.succeeded').textContent().catch(() => '')));
    check('good order: the status badge says Done', (await page.textContent('#op-badge')).trim() === 'Done');
    const view = await checkLog(page, id, 'good order');
    await checkAllDone(page, 'good order', view.steps.length);
    const seenRunning = new Set((await seenStates(page, id)).filter((e) => e.status === 'running')
      .map((e) => e.text.replace(/^In progress: /, '').replace(/….*$/, '')));
    console.log(`     (steps seen running: ${[...seenRunning].join(', ') || 'none'})`);

    await bell.click();
    const note = panel.locator(`.nt[data-op="${id}"]`);
    const noted = await until(page, (id) => /done/i.test(document.querySelector(`#notif-list .nt[data-op="${id}"] .b`)?.textContent || ''), id);
    check('good order: the bell panel lists the notification that the order is done', noted,
      await note.count() ? await note.textContent() : await panel.textContent());
    await page.keyboard.press('Escape');
  }

  // 2. A declined order: placed optimistically (the basket empties and the
  //    order is listed, pending, at once), then rolled back where it can be
  //    seen and heard: the basket refilled, the entry saying why and what was
  //    undone, the same announced. The reservation is shown undone, the
  //    failure sentence is said, and a reload keeps the operation selected.
  check('the good order emptied the basket', (await page.inputValue('input[data-sku="tea"]')) === '0');
  await page.getByLabel('Tea').fill('1');
  await page.getByRole('button', { name: /Declined card/ }).click();
  check('the declined quick pick fills the card', (await page.inputValue('#card')).replace(/\D/g, '') === '4000000000000002');
  await recordOrders(page);
  await recordHeard(page);
  const declinedId = await startOperation(page, 'Place order');
  const wasPending = await until(page, () => (window.__orders || []).some((e) => e.state === 'pending'), null, 5000);
  const pending = (await seenOrders(page)).filter((e) => e.state === 'pending');
  check('declined order: at once the basket is empty and the order is listed, marked pending', wasPending
    && pending.some((e) => /Your order/.test(e.text) && /Pending/.test(e.text) && /Tea × 1/.test(e.text) && e.basket === 0),
    JSON.stringify(await seenOrders(page)));
  await page.locator('.outcome.failed').waitFor({ timeout: 30000 });
  const rolledBack = page.locator('#recent-list li.o-rolled-back', { hasText: 'Tea × 1' });
  await rolledBack.first().waitFor({ timeout: 10000 }).catch(() => {});
  await shot(page, 'declined.png');
  {
    const text = (await rolledBack.count()) ? (await rolledBack.first().textContent()).replace(/\s+/g, ' ') : '';
    check('declined order: its entry says it was rolled back, why, and what was undone', /Rolled back/.test(text)
      && /declined/i.test(text) && /Items reserved: undone \(Items put back\)/.test(text) && /back in your basket/.test(text), text || await page.textContent('#recent-list'));
    check('declined order: the items are back in the basket', (await page.inputValue('input[data-sku="tea"]')) === '1');
    const note = (await page.locator('#basket-note').textContent()).trim();
    check('declined order: the basket says so', await page.locator('#basket-note').isVisible() && /rolled back/.test(note) && /back in your basket/.test(note), note);
    const rollbackSaid = `Your order was rolled back. ${(await getView(declinedId)).outcome.summary} Your items are back in your basket.`;
    const said = await heard(page, new RegExp('^' + rollbackSaid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$'));
    check(`declined order: the rollback is announced in the aria-live region ("${rollbackSaid}")`, said, await allHeard(page));
  }
  const hash = await page.evaluate(() => location.hash);
  check('the URL hash names the operation', /^#op_[0-9a-z]+$/i.test(hash) && hash === '#' + declinedId, hash);

  const view = await getView(hash.slice(1));
  const outcome = (await page.textContent('.outcome.failed')).trim();
  check('the failure sentence is shown', outcome === view.outcome.summary, `page: ${outcome} / api: ${view.outcome && view.outcome.summary}`);
  check('it says the card was declined', /declined/i.test(outcome), outcome);

  const undone = page.locator('.s-compensated');
  check('the reservation is shown undone', (await undone.count()) === 1
    && /Items reserved/.test(await undone.textContent()) && /Undone/.test(await undone.textContent())
    && /Items put back/.test(await undone.textContent()), await undone.count() ? await undone.textContent() : 'no compensated step');
  check('the payment step shows the error', /declined/i.test(await page.locator('.s-failed').textContent()));
  check('the steps after it are not needed', (await page.locator('.s-skipped').count()) === 2);
  check('the status badge says it did not go through', /did not go through/i.test(await page.textContent('#op-badge')));
  check('no Cancel button once it ended', !(await page.locator('#cancel').isVisible()));

  const live = page.locator('[aria-live="polite"]');
  const said = (await live.textContent()).trim();
  check('the aria-live region announced something', said.length > 0, 'it is empty');
  check('it announced the outcome', said.includes(view.outcome.summary), said);

  const listed = page.locator(`#recent-list [data-op="${hash.slice(1)}"]`);
  await listed.waitFor({ timeout: 10000 }).catch(() => {});
  check('the operation is in the recent list, selected', (await listed.getAttribute('aria-current')) === 'true');

  await page.reload();
  await page.locator('.outcome.failed').waitFor({ timeout: 10000 }).catch(() => {});
  check('a reload keeps the operation selected', (await page.locator('.outcome.failed').count()) === 1
    && (await page.evaluate(() => location.hash)) === hash);

  // The bell: this person's notifications are counted, listed, and can be marked read.
  await bell.waitFor({ state: 'visible', timeout: 10000 }).catch(() => {});
  check('the bell is shown', await bell.isVisible());
  const unread = async () => {
    const m = /(\d+) unread/.exec(await bell.getAttribute('aria-label') || '');
    return m ? Number(m[1]) : 0;
  };
  await until(page, () => /[1-9]\d* unread/.test(document.querySelector('#bell').getAttribute('aria-label') || ''));
  check('the bell counts at least one unread', (await unread()) >= 1, await bell.getAttribute('aria-label'));
  check('the badge shows the count', (await page.textContent('#bell-count')).trim() === String(await unread()));
  await bell.click();
  check('the bell opens the panel', await panel.isVisible() && (await bell.getAttribute('aria-expanded')) === 'true');
  check('focus moves into the panel', await page.evaluate(() => !!document.activeElement.closest('#notif-panel')));
  const declined = panel.locator('.nt', { hasText: /declined/i });
  await declined.first().waitFor({ timeout: 10000 }).catch(() => {});
  await shot(page, 'bell.png');
  check('it lists a notification about the decline', (await declined.count()) >= 1, await panel.textContent());
  check('it is marked unread', (await declined.first().getAttribute('class')).includes('unread'));
  await page.keyboard.press('Escape');
  check('Escape closes the panel and returns focus to the bell', !(await panel.isVisible())
    && (await page.evaluate(() => document.activeElement.id)) === 'bell' && (await bell.getAttribute('aria-expanded')) === 'false');
  await bell.click();
  await panel.getByRole('button', { name: 'Mark all read' }).click();
  await until(page, () => /none unread/.test(document.querySelector('#bell').getAttribute('aria-label') || ''), null, 5000);
  check('Mark all read sets the count to 0', (await unread()) === 0 && !(await page.locator('#bell-count').isVisible()), await bell.getAttribute('aria-label'));
  check('the notification is no longer unread', (await panel.locator('.nt.unread').count()) === 0);
  await declined.first().click();
  check('a notification opens its operation', (await page.evaluate(() => location.hash)) === hash && !(await panel.isVisible()));

  // 3. Deleting the account: the busy audit store is shown retrying, then the
  //    step is late ("taking longer than usual"), then all is done; the farewell
  //    email goes out and the address is erased.
  const email = who + '@example.com';
  await page.getByLabel('Email', { exact: true }).fill(email);
  await recordStates(page);
  const accountId = await startOperation(page, 'Delete my account');
  const retrying = await sawState(page, accountId, 'retrying', /audit records.*Attempt 1 of 5 failed.*Trying again/);
  await shot(page, 'account-retrying.png');
  check('account: the audit step is shown retrying ("Attempt 1 of 5 failed … Trying again")', retrying,
    JSON.stringify((await seenStates(page, accountId)).map((e) => e.status + ': ' + e.text)));
  // Late: said on the step while it runs, and at the top until the operation ends.
  const late = await sawState(page, accountId, null, /Taking longer than usual/);
  await shot(page, 'account-late.png');
  const lateStates = (await seenStates(page, accountId)).filter((e) => /Taking longer than usual/i.test(e.text));
  check('account: it is shown "taking longer than usual" while it runs', late,
    JSON.stringify((await seenStates(page, accountId)).map((e) => e.status + ': ' + e.text)));
  console.log(`     (late shown on: ${lateStates.map((e) => e.status === 'notice' ? 'the operation' : 'the ' + e.status + ' step').join(', ')})`);
  await page.locator('.outcome.succeeded').waitFor({ timeout: 30000 }).catch(() => {});
  check('account: the outcome says it is done', /done/i.test(await page.locator('.outcome.succeeded').textContent().catch(() => '')));
  check('account: "taking longer" is no longer shown once done', (await page.locator('#op', { hasText: /Taking longer than usual/ }).count()) === 0);
  const accountView = await checkLog(page, accountId, 'account');
  check('account: the log keeps the lateness', /audit records is taking longer than usual/i.test(await page.textContent('#op-log')));
  check('account: the audit step took three attempts', accountView.steps.find((s) => s.name === 'delete-audit-logs')?.attempts === 3);
  await checkAllDone(page, 'account', accountView.steps.length);

  const erased = page.locator('#op .erased');
  await erased.waitFor({ timeout: 15000 }).catch(() => {});
  check('the operation view says the email address was erased', (await erased.count()) === 1 && /email address was erased/i.test(await erased.textContent()),
    await page.textContent('#op'));
  await page.locator('#mail summary').click();
  const mail = page.locator('#mail-list li', { hasText: email });
  await mail.first().waitFor({ timeout: 10000 }).catch(() => {});
  check('the farewell email is in "Demo emails"', (await mail.count()) >= 1, await page.textContent('#mail'));
  check('it shows a subject and the body', (await mail.count()) >= 1 && (await mail.first().locator('.subj').textContent()).trim().length > 0
    && (await mail.first().locator('.body').textContent()).trim().length > 0);
  await shot(page, 'account-done.png', true);

  // 4. Accessibility (axe-core), wide and narrow, with an operation selected,
  //    the bell panel closed then open.
  for (const width of [1280, 320]) {
    await page.setViewportSize({ width, height: width > 400 ? 900 : 720 });
    await checkAxe(page, `${width} px, operation selected`);
    if (width === 320) {
      await shot(page, 'narrow-320.png', true);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check('320 px: nothing makes the page scroll sideways', wide <= 320, `scrollWidth ${wide}`);
    }
    await bell.click();
    await panel.waitFor({ timeout: 5000 }).catch(() => {});
    await checkAxe(page, `${width} px, bell panel open`);
    if (width === 320) await shot(page, 'narrow-320-bell.png');
    await page.keyboard.press('Escape');
  }

  // 8. The package's client, as the page loads it (/ui/herald.js), with an
  //    end user's token: it follows her own operation, and someone else's
  //    does not exist for her.
  const watched = await page.evaluate(async ([opId]) => {
    const { Herald } = await import(new URL('/ui/herald.js', location.href).href);
    const tokenFor = async (user) => (await (await fetch('/demo/session', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }),
    })).json()).token;
    const watch = (token) => new Promise((resolve) => {
      let status = null;
      const stop = new Herald({ token }).watchOperation(opId, (view) => { status = view.status; }, {
        onConnection: (state) => { if (['ended', 'not-found', 'refused'].includes(state)) { stop(); resolve({ state, status }); } },
      });
      setTimeout(() => { stop(); resolve({ state: 'timeout', status }); }, 10000);
    });
    const owner = (await (await fetch('/v1/operations/' + opId)).json()).subject;
    return { own: await watch(await tokenFor(owner)), other: await watch(await tokenFor(owner + '-someone-else')) };
  }, [declinedId]);
  check('watchOperation with the owner\'s token follows it to its end', watched.own.state === 'ended' && watched.own.status === 'failed', JSON.stringify(watched.own));
  check('watchOperation with another user\'s token finds nothing', watched.other.state === 'not-found', JSON.stringify(watched.other));

  // 7. The page reported the lag it saw, and herald exports it.
  const rendered = async () => {
    const text = await (await fetch(base + '/metrics')).text();
    return Number((/^herald_ui_commit_to_render_seconds_count (\S+)/m.exec(text) || [])[1] || 0);
  };
  const lagDeadline = Date.now() + 15000;
  let reported = await rendered();
  while (!reported && Date.now() < lagDeadline) { await new Promise((r) => setTimeout(r, 200)); reported = await rendered(); }
  check('the page reported commit-to-render lag (herald_ui_commit_to_render_seconds)', reported > 0, `count ${reported}`);

  check('no script errors', errors.length === 0, errors.join('; '));

  // 6. The page ran under its Content-Security-Policy without tripping it,
  //    and the policy is real: an inline script is refused.
  const head = (await fetch(base + '/')).headers;
  const csp = head.get('content-security-policy') || '';
  check('the page is served with a Content-Security-Policy', /default-src 'self'/.test(csp)
    && /frame-ancestors 'none'/.test(csp) && !/unsafe-inline/.test(csp), csp);
  check('the page may not be framed', head.get('x-frame-options') === 'DENY');
  const demoHead = (await fetch(base + '/demo/outbox')).headers;
  check("the demo's own routes carry the same headers", demoHead.get('content-security-policy') === csp
    && demoHead.get('x-content-type-options') === 'nosniff');
  check('no Content-Security-Policy violation', refusals.length === 0, refusals.join('; '));
  const ran = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true;';
    document.body.appendChild(s);
    return window.__inlineRan === true;
  });
  // The report comes from the page, shortly after: wait for it, up to 5 s.
  const deadline = Date.now() + 5000;
  while (!refusals.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  check('an inline script is refused, and the refusal reported', !ran && refusals.length > 0, refusals.join('; '));
} catch (e) {
  check('the run finished', false, e.stack || String(e));
}
await finish(browser);
