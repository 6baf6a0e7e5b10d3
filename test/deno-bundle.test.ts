// dist/ice-test-deno.mjs, the Deno peer users copy: it runs a session as the README's command runs
// it (DENO_V8_FLAGS included), and the V8 code cache it carries (scripts/deno-bundle.ts) is one V8
// takes. V8 drops a cache that does not fit without a word, and the start-up gain with it.
import { spawn } from "node:child_process";
import t from "tap";
import { DIST, ensureBuilt } from "../scripts/dist.ts";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, ROOT, loopbackFlags, watchProcess, type PeerProcess } from "../scripts/peer-process.ts";
import { resultOf, uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";

const DENO = `${ROOT}node_modules/deno/deno`;
// The first run builds dist/ (about 15 s on an idle machine, far more on a busy one).
t.setTimeout(300_000);

/** Compiles the bundle's program with its cache, as the bundle does, and says what V8 made of it. */
const CHECK_CACHE = `import { Script } from "node:vm";
const text = Deno.readTextFileSync(Deno.args[0]);
const cache = /^function iceTestDenoCache\\(\\)\\{\\/\\*(.*)\\*\\/\\}$/m.exec(text)?.[1] ?? "";
const program = text.slice(text.indexOf("\\nfunction iceTestDenoProgram(") + 1, -1);
const cachedData = Uint8Array.fromBase64(cache);
const script = new Script(program, { cachedData });
console.log(JSON.stringify({ bytes: cachedData.length, rejected: script.cachedDataRejected }));
`;

t.test("the Deno bundle's code cache is accepted by the Deno that built it, under the README's V8 flags", async (t) => {
  await ensureBuilt();
  const check = watchProcess(spawn(DENO, ["eval", "--quiet", ...DENO_V8_FLAGS, "--allow-read", CHECK_CACHE, DIST.denoBundle], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  t.equal(await check.exited, 0, `the check runs (stderr: ${check.stderr.join(" | ")})`);
  const { bytes, rejected } = JSON.parse(check.lines.join("")) as { bytes: number; rejected: boolean };
  t.equal(rejected, false, "V8 takes the cache instead of compiling the program");
  // A cache of the top level alone is ~0.2 MB; the warm-up session's holds the functions it ran.
  t.ok(bytes > 800_000, `the cache holds the functions a session runs (${bytes} bytes)`);
});

t.test("two peers from the Deno bundle meet and connect", async (t) => {
  await ensureBuilt();
  const server = await startTestServer(t);
  const flags = loopbackFlags(`http://${server.address}`, uniqueRoom("deno-bundle"), ["--messages", "1"]);
  const run = (role: string): PeerProcess => {
    const peer = watchProcess(spawn(DENO, ["run", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, DIST.denoBundle, "--role", role, ...flags], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] }));
    t.teardown(() => void peer.child.kill("SIGKILL"));
    return peer;
  };
  const [answerer, offerer] = [run("answerer"), run("offerer")];
  const [a, o] = [resultOf(answerer, await answerer.exited), resultOf(offerer, await offerer.exited)];
  for (const [name, result] of [["offerer", o], ["answerer", a]] as const) {
    t.equal(result.code, 0, `the ${name} exits 0 (stderr: ${result.stderr.join(" | ")})`);
    t.equal(result.summary?.connected, true, `the ${name} reports connected`);
    t.match(result.summary?.runtime, /^deno /, `the ${name} ran on Deno`);
  }
});
