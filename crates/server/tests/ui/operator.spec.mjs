// Browser check of the operator page (crates/server/src/ui/operator.*).
//
// A standalone Node script, run by `cargo test -p herald --test ui`
// (crates/cli/tests/ui.rs), which starts `herald serve` with an admin token
// and three workflows, and runs: an order that succeeded after a retry, an
// operation held for a person (HELD_ID) and one past its expected second
// (LATE_ID). Then, through the page, with the keyboard only:
//
//  1. without a token the page says it needs one; the token typed and
//     Enter pressed, it loads;
//  2. the order's workflow: finished, succeeded, in time, its retry, flow
//     time percentiles and the chart; the held workflow's held step;
//  3. the late and the held operations listed, each linking to its timeline
//     and showing its trace id;
//  4. the registry: the service, its circuit and its instance;
//  5. Refresh by keyboard; the token kept across a reload (this tab only);
//  6. axe-core at 1280 px and 320 px, nothing scrolling sideways at 320 px;
//     no script error, no Content-Security-Policy violation.
//
// The browser, the checks and axe-core come from harness.mjs.

import { base, check, checkAxe, finish, open, shot, until } from './harness.mjs';

const token = process.env.HERALD_ADMIN_TOKEN || '';
const heldId = process.env.HELD_ID || '';
const lateId = process.env.LATE_ID || '';

const { browser, page, errors, refusals } = await open();
try {
  // 1. No token: the page says what it needs.
  await page.goto(base + '/operator');
  await page.locator('#alert').waitFor({ timeout: 10000 }).catch(() => {});
  check('without a token the page asks for one', /admin token/i.test(await page.textContent('#alert')));
  await page.keyboard.press('Tab');
  check('the token field is the first stop of the keyboard', await page.evaluate(() => document.activeElement?.id === 'token'));
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  const loaded = await until(page, () => document.querySelector('#wf-order') !== null, null, 15000);
  check('with the token, the workflows load', loaded, await page.textContent('main'));
  check('the alert is gone', await page.locator('#alert').isHidden());

  // 2. The workflows, as /metrics counts them.
  const cells = async (name) => page.evaluate((name) => {
    const article = document.querySelector(`#wf-${name}`)?.closest('article');
    if (!article) return null;
    const heads = Array.from(article.querySelectorAll('thead th'), (th) => th.textContent.trim());
    const values = Array.from(article.querySelectorAll('tbody td'), (td) => td.textContent.trim());
    return Object.fromEntries(heads.map((h, i) => [h, values[i]]));
  }, name);
  const order = await cells('order');
  check('order: one finished, succeeded, in time', order && order.Finished === '1' && order.Succeeded === '1' && order['In time'] === '100 %', JSON.stringify(order));
  check('order: its retry is counted', order && Number(order.Retries) === 1, JSON.stringify(order));
  check('order: flow time percentiles are shown against the expected hour', order && /ms|s$/.test(order.p95) && order.Expected === '1 h', JSON.stringify(order));
  const chart = page.locator('article:has(#wf-order) svg.chart');
  check('order: a chart of its flow times, named for screen readers', (await chart.count()) === 1
    && /p95/.test(await chart.getAttribute('aria-label')) && (await chart.locator('rect').count()) > 0);
  const held = await cells('held');
  check('held: its held step is counted', held && held.Held === '1', JSON.stringify(held));

  // 3. Late and held operations.
  const flagged = await until(page, (ids) => ids.every((id) => document.querySelector(`#flagged a[href="/#${id}"]`)), [heldId, lateId], 10000);
  check('the late and the held operations are listed, linking to their timelines', flagged, await page.textContent('#flagged'));
  const row = (id) => page.locator('#flagged tr', { has: page.locator(`a[href="/#${id}"]`) });
  check('the late one says why', /late/.test(await row(lateId).textContent()));
  check('the held one says why', /needs a person/.test(await row(heldId).textContent()));
  check('each shows its trace id', (await row(lateId).locator('code').textContent()) === lateId.slice(3));

  // 4. The registry.
  const svc = page.locator('#services tr', { hasText: 'svc' });
  check('the service is listed with its circuit and instance', (await svc.count()) === 1 && /closed/.test(await svc.textContent())
    && /1 of 1/.test(await svc.textContent()), await page.textContent('#services'));
  await shot(page, 'operator.png', true);

  // 5. Refresh by keyboard; the token stays for this tab.
  await page.evaluate(() => { document.querySelector('#updated').textContent = 'stale'; });
  await page.focus('#refresh');
  await page.keyboard.press('Enter');
  check('Refresh, by keyboard, loads again', await until(page, () => /^updated/.test(document.querySelector('#updated').textContent), null, 5000));
  await page.reload();
  check('after a reload the token is still used', await until(page, () => document.querySelector('#wf-order') !== null, null, 10000));

  // 6. Accessibility, wide and narrow.
  for (const width of [1280, 320]) {
    await page.setViewportSize({ width, height: 900 });
    await checkAxe(page, `operator page, ${width} px`);
  }
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check('320 px: nothing makes the page scroll sideways', wide <= 320, `scrollWidth ${wide}`);
  await shot(page, 'operator-320.png', true);
  check('no script errors', errors.length === 0, errors.join('; '));
  check('no Content-Security-Policy violation', refusals.length === 0, refusals.join('; '));
} catch (e) {
  check('the run finished', false, e.stack || String(e));
}
await finish(browser);
