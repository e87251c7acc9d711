#!/usr/bin/env node
// Is dist/ exactly what tsc makes of src/? herald embeds dist/herald.js
// at build time (the Rust build must not need node), so the committed
// build must not drift from its source. Builds into a temporary directory
// and compares every file, byte for byte; exit 1 names those that differ.
//
//   node clients/js/check-dist.mjs
//
// The compiler: $TSC, else target/ui-tools/node_modules/.bin/tsc at the
// repository's root, else clients/js/node_modules/.bin/tsc, else `tsc` on
// the PATH. Use the version package.json names: another may print the
// same program differently.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const tsc =
  process.env.TSC ||
  [join(root, 'target', 'ui-tools', 'node_modules', '.bin', 'tsc'), join(here, 'node_modules', '.bin', 'tsc')].find((p) => existsSync(p)) ||
  'tsc';

const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).devDependencies.typescript;
const version = spawnSync(tsc, ['--version'], { encoding: 'utf8' });
if (version.error || version.status !== 0) {
  console.error(`check-dist: cannot run ${tsc} (${version.error?.message ?? version.stderr.trim()}); set TSC`);
  process.exit(2);
}
const found = version.stdout.trim().replace(/^Version /, '');
if (found !== pinned) console.error(`check-dist: tsc ${found}, package.json names ${pinned}: a difference may be the compiler's`);

const out = mkdtempSync(join(tmpdir(), 'herald-js-dist-'));
try {
  process.exitCode = compare(out);
} finally {
  rmSync(out, { recursive: true, force: true });
}

/** Builds into `out` and compares it with dist/; the exit code. */
function compare(out) {
  const built = spawnSync(tsc, ['-p', join(here, 'tsconfig.json'), '--outDir', out], { encoding: 'utf8' });
  if (built.status !== 0) {
    console.error(`check-dist: tsc failed:\n${built.stdout}${built.stderr}`);
    return 1;
  }
  const dist = join(here, 'dist');
  const names = new Set([...readdirSync(out), ...(existsSync(dist) ? readdirSync(dist) : [])]);
  const differ = [...names].sort().filter((name) => {
    const a = join(out, name), b = join(dist, name);
    return !existsSync(a) || !existsSync(b) || !readFileSync(a).equals(readFileSync(b));
  });
  if (differ.length) {
    console.error(`check-dist: dist/ is not what tsc makes of src/: ${differ.join(', ')}`);
    console.error('check-dist: run `npm run build` in clients/js and commit dist/');
    return 1;
  }
  console.error(`check-dist: dist/ is tsc ${found}'s build of src/ (${names.size} files)`);
  return 0;
}
