// Browser check of the choice when two orders collide (place-order's
// `on_conflict = "ask"`; crates/server/src/ui/decide.js).
//
// Run by `cargo test -p herald --test ui` (crates/cli/tests/ui.rs), which
// starts `herald demo --pace 2s` with the demo's place-order given a short
// `decide_within` (DECIDE_WITHIN_S seconds) through a workflows folder of
// its own, and runs this with HERALD_URL set. Through the page, as a
// person would, each with a customer of its own:
//
//  1. a second order while the first runs opens a modal dialog: a dialog,
//     aria-modal, labelled and described, focus on the default choice and
//     kept inside on Tab and Shift+Tab; it shows both orders (the running
//     one's label, items and steps), both choices, the time left and what
//     happens by default; axe finds nothing serious with it open. Escape
//     closes it with no choice made and gives focus back; the order's view
//     offers to choose again; "Keep the earlier one" then cancels the new
//     order before it does anything (rolled back on the page, its items back
//     in the basket), and the earlier one goes on to the end;
//  2. "Replace it with this one": the earlier order is undone (rolled back
//     on the page too), and the new one runs to the end;
//  3. nobody chooses: when time runs out the dialog says which default was
//     applied and why, in herald's words (the `decided` event), with focus
//     still in it; OK closes it and focus goes back.
//
// Every wait is a condition with a deadline. Exit code 0 when every check
// passed; the last line is "N passed, N failed".

import { allHeard, base, check, checkAxe, finish, heard, open, recordHeard, shot, until } from './harness.mjs';

const decideWithin = Number(process.env.DECIDE_WITHIN_S || 60) * 1000;
const getView = async (id) => (await fetch(`${base}/v1/operations/${id}`)).json();

/** The operation once it has ended (or as it is when `ms` ran out). */
async function final(id, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await getView(id);
    if (['succeeded', 'failed', 'cancelled'].includes(v.status) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One tea, ordered with the good card; the new operation's id, once the URL names it. */
async function placeOrder(page) {
  await page.getByLabel('Tea').fill('1');
  await page.getByRole('button', { name: /Good card/ }).click();
  const before = await page.evaluate(() => location.hash);
  await page.getByRole('button', { name: 'Place order' }).click();
  await until(page, (h) => /^#op_/.test(location.hash) && location.hash !== h, before);
  return (await page.evaluate(() => location.hash)).slice(1);
}

/** As `who`, an order, then a second one while the first runs: both ids, and whether the dialog opened. */
async function collide(page, who) {
  await page.getByLabel('You are').fill(who);
  const first = await placeOrder(page);
  const second = await placeOrder(page);
  const opened = await until(page, () => document.querySelector('#decide').open, null, 10000);
  return { first, second, opened };
}

const dialogOpen = (page) => page.evaluate(() => document.querySelector('#decide').open);
const focusInDialog = (page) => page.evaluate(() => !!document.activeElement.closest('#decide'));
const focused = (page) => page.evaluate(() => (document.activeElement.textContent || '').trim());
const text = async (page, sel) => ((await page.locator(sel).textContent()) || '').replace(/\s+/g, ' ').trim();
const rolledBack = (page, id) => until(page, (id) => !!document.querySelector(`#recent-list li.o-rolled-back [data-op="${id}"]`), id, 15000);

const { browser, page, errors, refusals } = await open();
const run = Date.now().toString(36);
try {
  await page.goto(base + '/');
  await recordHeard(page);

  // 1. The dialog: what it is, what it says, the keyboard, axe; Escape; then keep.
  {
    const { first, second, opened } = await collide(page, `ui-keep-${run}`);
    check('a second order while the first runs opens a dialog', opened);
    const dialog = page.getByRole('dialog', { name: 'Keep the earlier request, or replace it?' });
    check('it is a modal dialog named by its heading', await dialog.isVisible()
      && (await dialog.getAttribute('aria-modal')) === 'true');
    const described = await page.evaluate(() => document.querySelector('#decide').getAttribute('aria-describedby')
      .split(' ').map((id) => document.getElementById(id).textContent).join(' ').replace(/\s+/g, ' '));
    check('it is described: an earlier request is in progress, and the time to choose', /An earlier request is still in progress/.test(described)
      && /If you do not choose by/.test(described), described);
    check('focus moved into it, onto the default choice (keep)', await page.evaluate(() => document.activeElement.dataset.choice === 'keep'),
      await focused(page));
    await until(page, () => /Reserving your items|Items reserved/.test(document.querySelector('#decide-old').textContent), null, 5000);
    const older = await text(page, '#decide-old'), newer = await text(page, '#decide-new');
    check('it shows the running order: its label, items and steps', /Your order/.test(older) && /Tea × 1/.test(older)
      && /(Reserving your items: in progress|Items reserved: done)/.test(older) && /Taking your payment/.test(older), older);
    check('it shows the new order, not started', /Your order/.test(newer) && /Tea × 1/.test(newer) && /Not started: it waits for your choice/.test(newer), newer);
    check('it offers both choices', await page.getByRole('button', { name: 'Keep the earlier one' }).isVisible()
      && await page.getByRole('button', { name: 'Replace it with this one' }).isVisible());
    const timeLeft = await text(page, '#decide-time');
    check('it says the time left and what happens by default', /^If you do not choose by \d\d:\d\d:\d\d \(in \d+ seconds?\), the earlier request is kept and this one will not run \(the default\)\.$/.test(timeLeft), timeLeft);
    await shot(page, 'decide-open.png');

    let kept = true;
    for (let i = 0; i < 5; i++) { await page.keyboard.press('Tab'); kept = kept && await focusInDialog(page); }
    for (let i = 0; i < 5; i++) { await page.keyboard.press('Shift+Tab'); kept = kept && await focusInDialog(page); }
    check('Tab and Shift+Tab keep focus inside the dialog', kept && await dialogOpen(page), await focused(page));
    await checkAxe(page, 'the conflict dialog open');

    await page.keyboard.press('Escape');
    await until(page, () => !document.querySelector('#decide').open, null, 5000);
    check('Escape closes it', !(await dialogOpen(page)));
    check('focus goes back to where it was (Place order)', (await focused(page)) === 'Place order', await focused(page));
    check('no choice was made: it still waits', (await getView(second)).status === 'awaiting_decision');
    check('the page says no choice was made yet', await heard(page, /No choice made yet/), await allHeard(page));
    const choose = page.locator('#op-notices').getByRole('button', { name: 'Choose…' });
    check('the order\'s view says it waits for a choice, and offers it again', await choose.isVisible()
      && /Waiting for your choice/.test(await text(page, '#op-notices')), await text(page, '#op-notices'));

    await choose.click();
    check('"Choose…" opens the dialog again', await until(page, () => document.querySelector('#decide').open, null, 5000));
    await page.getByRole('button', { name: 'Keep the earlier one' }).click();
    await until(page, () => !document.querySelector('#decide').open, null, 10000);
    check('keep: the dialog closes', !(await dialogOpen(page)));
    check('keep: focus goes to the order\'s title', await page.evaluate(() => document.activeElement.id === 'op-title'));
    check('keep: it is announced', await heard(page, /You kept the earlier request/), await allHeard(page));
    const keptOut = await final(second);
    check('keep: the new order is cancelled without running', keptOut.status === 'cancelled'
      && keptOut.steps.every((s) => s.status === 'skipped'), keptOut.status);
    check('keep: the page says it was the choice made', await until(page, () => /As you chose, the earlier request was kept/.test(document.querySelector('#op-notices').textContent), null, 10000),
      await text(page, '#op-notices'));
    check('keep: the new order is rolled back on the page', await rolledBack(page, second), await text(page, '#recent-list'));
    check('keep: its items are back in the basket', (await page.inputValue('input[data-sku="tea"]')) === '1');
    check('keep: the earlier order goes on to the end', (await final(first)).status === 'succeeded');
  }

  // 2. Replace: the running order is undone, the new one runs.
  {
    const { first, second, opened } = await collide(page, `ui-replace-${run}`);
    check('replace: the dialog opened', opened);
    await page.getByRole('button', { name: 'Replace it with this one' }).click();
    await until(page, () => !document.querySelector('#decide').open, null, 10000);
    check('replace: it is announced', await heard(page, /You replaced the earlier request with this one/), await allHeard(page));
    const old = await final(first), now = await final(second);
    check('replace: the earlier order is undone', old.status === 'cancelled' && old.timeline.some((e) => e.type === 'superseded'), old.status);
    check('replace: the earlier order is rolled back on the page', await rolledBack(page, first), await text(page, '#recent-list'));
    check('replace: the new order runs to the end', now.status === 'succeeded', now.status);
    await shot(page, 'decide-replaced.png');
  }

  // 3. Nobody chooses: the default, said in herald's words when time runs out.
  {
    const { second, opened } = await collide(page, `ui-default-${run}`);
    check('default: the dialog opened', opened);
    const ranOut = await until(page, () => document.querySelector('#decide-h').textContent === 'Time ran out', null, decideWithin + 15000);
    check('default: when time runs out the dialog says so', ranOut && await dialogOpen(page), await text(page, '#decide'));
    const decided = (await getView(second)).timeline.find((e) => e.type === 'decided');
    const said = await text(page, '#decide-said');
    check('default: it says which default was applied and why, in herald\'s words', !!decided && decided.by_default
      && said === decided.message + '.' && /No choice was made in time, so the earlier request was kept and this one will not run \(the default\)/.test(said), said);
    check('default: the choices are gone, and focus is still in the dialog', !(await page.locator('#decide-choices').isVisible())
      && (await focused(page)) === 'OK', await focused(page));
    await shot(page, 'decide-default.png');
    await checkAxe(page, 'the conflict dialog, time ran out');
    await page.getByRole('button', { name: 'OK' }).click();
    await until(page, () => !document.querySelector('#decide').open, null, 5000);
    check('default: OK closes it and focus goes back', !(await dialogOpen(page)) && (await focused(page)) === 'Place order', await focused(page));
    check('default: the order\'s view keeps saying it', (await text(page, '#op-notices')).includes(decided.message), await text(page, '#op-notices'));
  }

  check('no script errors', errors.length === 0, errors.join('; '));
  check('no Content-Security-Policy violation', refusals.length === 0, refusals.join('; '));
} catch (e) {
  check('the run finished', false, e.stack || String(e));
}
await finish(browser);
