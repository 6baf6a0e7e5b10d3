// The V8 code cache that dist/ice-test.mjs and dist/ice-test carry. Compiling the program is most
// of a peer's start-up (a 2.6 MB bundle, and every werift and grpc-js function it calls, compiled
// lazily on first use); with V8's code cache they are deserialized instead. Node 20 has no
// compile cache for modules (module.enableCompileCache is Node 22) and a single-executable's
// `useCodeCache` holds only the top-level code, not the functions that run later, so the build
// makes the cache itself: it runs the program through node:vm as the outputs do, through a whole
// session on loopback (a server and two peers), and keeps what the offerer compiled, including the
// functions it ran. The cache is only code; V8 ignores it (and compiles as usual) when the Node
// that runs the file is not the one that built it.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loopbackFlags, watchProcess, type PeerProcess } from "./peer-process.ts";

/**
 * The bundle (CommonJS) becomes one function expression, so that each output can hand it what a
 * CommonJS module gets, and the URL that `import.meta.url` stood for.
 */
export function wrapProgram(cjs: string): string {
  return `(function (exports, require, module, __filename, __dirname, __iceTestUrl) {${cjs}\n})`;
}

/**
 * The program's name in stack traces. V8 keeps the name the cache was made under, whatever name the
 * output then gives: every output and the warm-up use this one, not a path of the build machine.
 */
export const SCRIPT_NAME = "ice-test";

/** What the outputs run, for the warm-up: the same Script source, so the cache fits it. */
const RUNNER = `const { Script } = require("node:vm");
const { readFileSync, writeFileSync } = require("node:fs");
const { dirname } = require("node:path");
const { pathToFileURL } = require("node:url");
const [programFile, cacheOut, ...args] = process.argv.slice(2);
const script = new Script(readFileSync(programFile, "utf8"), { filename: ${JSON.stringify(SCRIPT_NAME)} });
process.argv = [process.argv[0], programFile, ...args];
if (cacheOut) process.on("exit", () => writeFileSync(cacheOut, script.createCachedData()));
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, programFile, dirname(programFile), pathToFileURL(programFile).href);
`;

const WARM_UP_DEADLINE_MS = 60_000;

/**
 * Runs the wrapped program once as a peer in a loopback session and returns the file with the
 * offerer's code cache. If the session cannot happen here (no loopback networking), the cache of `peer --version`
 * (every module loaded, nothing run) is the fallback, and `warn` says why.
 */
export async function makeCodeCache(programFile: string, workDir: string, warn: (text: string) => void): Promise<string> {
  const runner = join(workDir, "warm-up.cjs");
  const cacheFile = join(workDir, "program.cache");
  writeFileSync(runner, RUNNER);
  const run: Run = (args, cacheOut = "", onLine) =>
    watchProcess(spawn(process.execPath, [runner, programFile, cacheOut, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }), onLine);
  try {
    await session(run, cacheFile);
  } catch (err) {
    warn(`the code cache covers loading only: the warm-up session failed (${err instanceof Error ? err.message : String(err)})`);
    const loaded = run(["peer", "--version"], cacheFile);
    if ((await loaded.exited) !== 0) throw new Error(`the program failed to start: ${loaded.stderr.join("\n")}`);
  }
  return cacheFile;
}

type Run = (args: readonly string[], cacheOut?: string, onLine?: (line: string) => void) => PeerProcess;

async function session(run: Run, cacheFile: string): Promise<void> {
  let listening: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (listening = resolve));
  const server = run(["server", "--insecure", "--host", "127.0.0.1", "--port", "0", "--stun-port", "0", "--no-stun-alt"], "", (line) => {
    const found = /"event":"listening".*"port":(\d+)/.exec(line)?.[1];
    if (found) listening(Number(found));
  });
  const timer = setTimeout(() => server.child.kill("SIGKILL"), WARM_UP_DEADLINE_MS);
  try {
    const exited = server.exited.then((code) => Promise.reject(new Error(`the server exited ${code} before listening: ${server.stderr.join(" | ")}`)));
    // It rejects once the server ends, here or in the finally below: only the race reads it.
    exited.catch(() => undefined);
    const address = `http://127.0.0.1:${await Promise.race([port, exited])}`;
    await warmUpPeers(address, "warm-up", (role, flags) => run(["peer", "--role", role, ...flags], role === "offerer" ? cacheFile : ""));
  } finally {
    clearTimeout(timer);
    server.child.kill("SIGTERM");
    await server.exited;
  }
}

/**
 * An offerer and an answerer of the program meet through the server at `address` and exchange a
 * message, so that the code a session runs is compiled; `peer` starts one (the offerer is the one
 * whose cache is kept). Rejects when either fails or the session outlasts the deadline.
 */
export async function warmUpPeers(address: string, room: string, peer: (role: "offerer" | "answerer", flags: string[]) => PeerProcess): Promise<void> {
  const flags = loopbackFlags(address, room, ["--messages", "1"]);
  const peers = [peer("offerer", flags), peer("answerer", flags)];
  const killPeers = setTimeout(() => peers.forEach((p) => p.child.kill("SIGKILL")), WARM_UP_DEADLINE_MS);
  const codes = await Promise.all(peers.map((p) => p.exited));
  clearTimeout(killPeers);
  if (codes.some((code) => code !== 0)) throw new Error(`peers exited ${codes.join(" and ")}: ${peers.flatMap((p) => p.stderr).join(" | ")}`);
}
