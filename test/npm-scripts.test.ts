// README's `npm run server` as an operator uses it: one process that gets the signals. Under
// `tsx server/main.ts` (or a shell between npm and node) SIGTERM stopped npm and left the server
// running, orphaned.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import t from "tap";
import { ROOT, watchProcess } from "../scripts/peer-process.ts";
import { untapped } from "./fixtures/untapped.ts";

/** Generous: tsx compiles the server on first start, and CI machines are busy. */
const DEADLINE_MS = 60_000;

t.test("SIGTERM to npm run server stops the server itself and leaves no process behind", async (t) => {
  const [command, ...args] = untapped("npm", "run", "--silent", "server", "--", "--insecure", "--host", "127.0.0.1", "--port", "0", "--stun-port", "0");
  const npm = watchProcess(spawn(command!, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true }));
  // Its own process group, so the teardown can end whatever is left whatever happened.
  t.teardown(() => {
    try {
      process.kill(-npm.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  await until(() => npm.lines.some((line) => /listening on/.test(line)), () => `the server did not listen: ${npm.stderr.join(" | ")}`);
  const server = childrenOf(npm.child.pid!);
  t.equal(server.length, 1, "npm runs exactly one process: the server, not a shell or a loader in between");
  t.match(readFileSync(`/proc/${server[0]}/cmdline`, "utf8"), /^[^\0]*node\0/, "that process is node");

  npm.child.kill("SIGTERM");
  await npm.exited;
  t.match(npm.lines.join("\n"), /"event":"stopping".*"signal":"SIGTERM"[\s\S]*"event":"stopped"/, "the server got SIGTERM and shut down cleanly");
  await until(() => !existsSync(`/proc/${server[0]}`), () => `process ${server[0]} is still running`);
  t.pass("the server process is gone");
});

function childrenOf(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
  return text === "" ? [] : text.split(/\s+/).map(Number);
}

/** Polls `done` until it holds; fails with `why()` after the deadline. */
async function until(done: () => boolean, why: () => string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!done()) {
    if (Date.now() > end) throw new Error(why());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
