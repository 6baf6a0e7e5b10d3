// The peer-connect benchmark's floor: each runtime loading only the built-in modules that the peer's
// program requires. It must name what the program loads, and load all of it, on both runtimes.
import t from "tap";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { builtinsOnly, builtinsRequiredBy } from "../bench/launchers.ts";

t.test("the built-ins a bundle requires, with or without node:, and nothing else", async (t) => {
  const file = join(t.testdir(), "program.cjs");
  writeFileSync(file, `var a=require("node:http2"),b=require("crypto"),c=require("timers/promises"),d=require("./local"),e=require("werift"),f=require("node:crypto");`);
  t.same(builtinsRequiredBy(file), ["crypto", "http2", "timers/promises"]);
});

for (const runtime of ["node", "deno"] as const) {
  t.test(`${runtime} loads every built-in it is given, and fails on one it does not have`, async (t) => {
    const loads = builtinsOnly(runtime, ["http2", "crypto", "dgram", "timers/promises"]);
    const ok = spawnSync(loads.command, loads.args, { encoding: "utf8" });
    t.equal(ok.status, 0, `exit 0 (stderr: ${ok.stderr})`);
    const missing = builtinsOnly(runtime, ["http2", "no-such-module"]);
    t.not(spawnSync(missing.command, missing.args, { encoding: "utf8" }).status, 0, "a module it cannot load is an error, not skipped");
  });
}
