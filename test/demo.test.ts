// `npm run demo`, exactly as README promises: a TLS server, a Node offerer and a Deno answerer.
import t from "tap";
import { spawn } from "node:child_process";
import { ROOT } from "../scripts/peer-process.ts";
import { untapped } from "./fixtures/untapped.ts";

t.test("npm run demo connects a Node offerer and a Deno answerer and exits 0", async (t) => {
  const [command, ...args] = untapped("npm", "run", "--silent", "demo");
  const child = spawn(command!, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => child.kill("SIGKILL"));
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  t.equal(code, 0, `the demo exits 0\n${output}`);
  t.match(output, /offerer\/node\s+│ connected\s+YES/, "the Node offerer's report says connected");
  t.match(output, /answerer\/deno\s+│ connected\s+YES/, "the Deno answerer's report says connected");
  t.match(output, /offerer\/node\s+│ selected pair\s+host\s+udp 127\.0\.0\.1:\d+/, "the offerer shows its selected loopback pair");
  t.match(output, /round trip\s+min [\d.]+ ms, avg [\d.]+ ms, max [\d.]+ ms over 5 pings/, "round trips are reported");
  t.match(output, /server\s+│ .*listening on 127\.0\.0\.1:\d+ \(tls/, "the server ran with TLS");
  t.match(output, /demo: both peers connected/, "the demo's verdict");
});
