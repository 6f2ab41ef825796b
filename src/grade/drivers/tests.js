"use strict";
const fs = require("fs");
const vm = require("vm");
const assert = require("assert");
const writeSync = fs.writeSync, stringify = JSON.stringify, slice = String.prototype.slice;
const fd = fs.openSync("verdicts", "a");
fs.unlinkSync("verdicts");
function emit(o) { writeSync(fd, stringify(o) + "\n"); }
function why(e) {
  try { return slice.call(String(e), 0, 300); } catch (_) { return "an exception that cannot be shown"; }
}
function report(c, ok, detail) { emit({case: c, pass: ok, detail: detail === undefined ? null : detail}); }
const tests = fs.readFileSync("tests.js", "utf8");
const solution = fs.readFileSync("solution.js", "utf8");
const declared = /^[ \t]*(?:(?:async[ \t]+)?function[ \t]*\*?[ \t]*(test_[A-Za-z0-9_$]*)|(?:const|let|var)[ \t]+(test_[A-Za-z0-9_$]*)[ \t]*=)/gm;
const names = [];
for (const m of tests.matchAll(declared)) { const n = m[1] || m[2]; if (!names.includes(n)) names.push(n); }
emit({expect: names.length ? names : ["tests"]});
Object.freeze(assert.strict);
Object.freeze(assert);
async function main() {
  // One context for the answer and the tests, so that both see the same Error and builtins.
  const ctx = vm.createContext({ module: { exports: {} }, console, require,
    setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask });
  Object.defineProperty(ctx, "assert", { value: assert, writable: false, configurable: false });
  ctx.exports = ctx.module.exports;
  try {
    vm.runInContext(solution, ctx, { filename: "solution.js" });
  } catch (e) { report("load", false, why(e)); return; }
  ctx.solution = ctx.module.exports;
  for (const [k, v] of Object.entries(ctx.module.exports || {})) { if (!(k in ctx)) ctx[k] = v; }
  try {
    vm.runInContext(tests, ctx, { filename: "tests.js" });
  } catch (e) { report("load tests", false, why(e)); return; }
  if (names.length === 0) report("tests", false, "no test_ functions");
  for (const n of names) {
    let f;
    try { f = vm.runInContext(n, ctx); } catch (e) { f = undefined; }
    if (typeof f !== "function") { report(n, false, "not a function"); continue; }
    try {
      const r = f();
      if (r !== null && (typeof r === "object" || typeof r === "function") && typeof r.then === "function") await r;
      report(n, true);
    } catch (e) { report(n, false, why(e)); }
  }
}
main().then(() => emit({done: true}), (e) => { report("driver", false, why(e)); emit({done: true}); });
