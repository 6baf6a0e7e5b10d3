// An error nothing catches (a bug in the core or in werift or grpc-js) ends the run with its report,
// not with a runtime's stack trace and no summary: the evidence so far is kept, the summary names
// an internal error, and standard error has what a bug report needs.
import { spawn } from "node:child_process";
import t from "tap";
import { ROOT, sourceCommand, watchProcess, type PeerRuntime } from "../scripts/peer-process.ts";
import { loopbackFlags, resultOf, uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";
import { untapped } from "./fixtures/untapped.ts";

const INJECT = "test/fixtures/inject-uncaught.ts";
const MAINS: Record<PeerRuntime, string> = { node: "client-node/main.ts", deno: "client-deno/main.ts" };

const server = await startTestServer(t);

for (const runtime of ["node", "deno"] as const) {
  for (const how of ["throw", "reject"] as const) {
    const what = how === "throw" ? "an exception thrown from a timer" : "a rejection nobody awaits";
    t.test(`${runtime}: ${what} ends the run with its summary and exit 1`, async (t) => {
      const { command, args } = sourceCommand(runtime, MAINS[runtime], ["--role", "offerer", ...loopbackFlags(`http://${server.address}`, uniqueRoom("uncaught"))], INJECT);
      const [program, ...argv] = runtime === "node" ? untapped(command, ...args) : [command, ...args];
      const child = spawn(program!, argv, {
        cwd: ROOT,
        env: { ...process.env, NO_COLOR: "1", ICE_TEST_INJECT: how },
        stdio: ["ignore", "pipe", "pipe"],
      });
      t.teardown(() => child.kill("SIGKILL"));
      const peer = watchProcess(child);
      const result = resultOf(peer, await peer.exited);
      const stderr = result.stderr.join("\n");
      t.equal(result.code, 1, `exit 1, an internal error (stderr: ${result.stderr.slice(0, 3).join(" | ")})`);
      t.equal(result.summary?.error?.kind, "internal", "the summary names an internal error");
      t.match(result.summary?.error?.message, `injected (${how})`, "with the error's own message");
      t.match(result.summary?.error?.hints.join(" "), /bug in ice-test.*report it/, "and asks for a report");
      t.match(result.summary?.peerId, /^peer-/, "what happened before it is kept: the peer had registered");
      t.match(stderr, /^ice-test: internal error, a bug in ice-test/m, "standard error says it is a bug");
      t.match(stderr, /inject-uncaught\.ts/, "with the stack, for the report");
    });
  }
}
