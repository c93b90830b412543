'use strict';
// Shared by the benchmarks: timing, medians, a C anchor compiled at run time,
// and a table with ratios against the anchor measured in the same run.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Compiles scripts/bench/<name>.c into a temp dir; returns the binary path. */
function compileC(name, libs = []) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'podnet-bench-')), name);
  execFileSync('cc', ['-O2', '-o', out, path.join(__dirname, `${name}.c`), ...libs], { stdio: 'inherit' });
  return out;
}

/** Prints rows {name, value, unit} with value/anchor ratios. */
function report(title, rows, anchorName) {
  const anchor = rows.find((r) => r.name === anchorName).value;
  console.log(`\n${title}`);
  for (const r of rows) {
    console.log(`  ${r.name.padEnd(44)} ${r.value.toFixed(3).padStart(10)} ${r.unit}   x${(r.value / anchor).toFixed(2)} vs ${anchorName}`);
  }
}

/**
 * Each round's figure of this build against the build before (PODNET_BENCH_BEFORE,
 * measured in the same round): the median ratio and its range.
 */
function roundRatios(label, after, before) {
  const r = after.map((a, i) => a / before[i]).sort((a, b) => a - b);
  console.log(`  ${label}, round by round: median x${median(r).toFixed(2)} (x${r[0].toFixed(2)}-x${r[r.length - 1].toFixed(2)}, ${r.length} rounds)`);
}

module.exports = { now, median, compileC, report, roundRatios };
