// dist/ice-test.mjs and dist/ice-test carry a V8 code cache (scripts/code-cache.ts). V8 drops a
// cache that does not fit the source without a word, and the start-up gain with it: check that it
// fits, with this Node (the one that built it).
import t from "tap";
import { readFileSync } from "node:fs";
import { Script } from "node:vm";
import { DIST, ensureBuilt } from "../scripts/dist.ts";

t.test("the bundle's code cache is accepted by the Node that built it", async (t) => {
  await ensureBuilt();
  // The program and the base64 cache are the two block comments the launcher reads (scripts/build.ts).
  const [program, cache] = [...readFileSync(DIST.bundle, "utf8").matchAll(/text\(function\(\)\{\/\*([^]*?)\*\/\}\)/g)].map((match) => match[1]);
  t.ok(program && cache, "dist/ice-test.mjs carries the program and its cache");
  if (!program || !cache) return;
  const cachedData = Buffer.from(cache, "base64");
  const script = new Script(program, { filename: DIST.bundle, cachedData });
  t.equal(script.cachedDataRejected, false, "V8 takes the cache instead of compiling the program");
  // A cache of the top level alone is ~0.4 MB; the warm-up session's holds the functions it ran.
  t.ok(cachedData.length > 800_000, `the cache holds the functions a session runs (${cachedData.length} bytes)`);
});

t.test("stack traces name the program, not a file of the machine that built it", async (t) => {
  await ensureBuilt();
  const [program, cache] = [...readFileSync(DIST.bundle, "utf8").matchAll(/text\(function\(\)\{\/\*([^]*?)\*\/\}\)/g)].map((match) => match[1]);
  t.ok(program && cache, "dist/ice-test.mjs carries the program and its cache");
  if (!program || !cache) return;
  // V8 keeps the name the cache was made under: the build's warm-up once left its work directory there.
  const run = new Script(program, { filename: "elsewhere.js", cachedData: Buffer.from(cache, "base64") }).runInThisContext() as (...args: unknown[]) => void;
  const failingRequire = () => {
    throw new Error("stop at the first require");
  };
  const stack = (() => {
    try {
      run({}, failingRequire, { exports: {} }, "/x/ice-test", "/x", "file:///x/ice-test");
    } catch (err) {
      return String((err as Error).stack);
    }
    return "";
  })();
  t.match(stack, /\(ice-test:\d+:\d+\)/, "the program's frames are named ice-test");
  t.notMatch(stack, /work-\d+|program\.js/, "no build directory in the frames");
});
