// Signaling failures as a person sees them: spawned peer CLIs (Node and Deno) in text mode against
// real servers; each failure is one line, printed once, with the exit code scripts rely on.
import { spawn } from "node:child_process";
import t, { type Test } from "tap";
import { startServer } from "../server/server.ts";
import { selfSignedTls } from "../server/tls.ts";
import { peerCommand, ROOT, watchProcess, type PeerRuntime } from "../scripts/peer-process.ts";
import { nodePrograms } from "./fixtures/node-bundles.ts";
import { untapped } from "./fixtures/untapped.ts";
import { uniqueRoom } from "./fixtures/peers.ts";

interface TextRun {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
  /** The summary's "reason" line, without its label. */
  readonly reason: string;
}

/** A peer in text mode that meets nobody: only signaling matters here. */
async function peer(runtime: PeerRuntime, addr: string, extra: string[] = [], wrap: string[] = []): Promise<TextRun> {
  const { command, args } = peerCommand(runtime, ["--role", "offerer", "--signaling-addr", addr, "--room", uniqueRoom(), "--wait", "1s", "--bind", "127.0.0.1", ...extra], { node: untapped(process.execPath, programs.peer) });
  const [program, ...argv] = [...wrap, command, ...args];
  const child = spawn(program!, argv, { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  const watched = watchProcess(child);
  const code = await watched.exited;
  const reason = watched.lines.find((line) => line.startsWith("reason "))?.replace(/^reason\s+/, "") ?? "";
  return { code, stdout: watched.lines, stderr: watched.stderr, reason };
}

function assertOneLine(t: Test, run: TextRun, reason: string, words: RegExp): void {
  t.equal(run.code, 3, `exit code 3 (signaling) for ${reason}`);
  t.match(run.reason, new RegExp(`^${reason}: `), `the summary names the reason ${reason}`);
  t.match(run.reason, words, `and says what to do: "${run.reason}"`);
  const all = [...run.stdout, ...run.stderr].join("\n");
  const message = run.reason.replace(/^[\w-]+: /, "");
  t.equal(all.split(message).length - 1, 1, "the message is printed once (stdout and stderr together)");
  t.notMatch(all, /Resolution note|Last error|No connection established/, "none of grpc-js's framing");
  t.notMatch(all, /^\s+at .+[:(]\d+/m, "no stack trace");
  t.notMatch(all, /DEP0123|DeprecationWarning|servername/, "no warning about the servername");
}

const programs = await nodePrograms();
const material = await selfSignedTls();
const dir = t.testdir({ "ca.pem": material.cert, "notes.txt": "not a certificate\n" });
const [plain, tls] = await Promise.all([startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: null }), startServer({ host: "::", port: 0, tls: material, stunPort: null })]);
t.teardown(() => Promise.all([plain.shutdown(500), tls.shutdown(500)]));

// Side by side: spawning is the slow part.
const isRoot = process.getuid?.() === 0;
const runs = {
  plaintext: peer("node", `https://127.0.0.1:${plain.port}`),
  speaksTls: peer("deno", `http://127.0.0.1:${tls.port}`),
  notPem: peer("node", `https://localhost:${tls.port}`, ["--ca", `${dir}/notes.txt`]),
  // A fresh network namespace has no routes: the connect fails at once with ENETUNREACH.
  unreachable: isRoot ? peer("node", "http://192.0.2.1:443", [], ["unshare", "--net"]) : undefined,
  ipv4Node: peer("node", `https://127.0.0.1:${tls.port}`, ["--ca", `${dir}/ca.pem`]),
  ipv4Deno: peer("deno", `https://127.0.0.1:${tls.port}`, ["--ca", `${dir}/ca.pem`]),
  ipv6Deno: peer("deno", `https://[::1]:${tls.port}`, ["--ca", `${dir}/ca.pem`]),
};

// A failure is reported by the test that awaits it, not as an unhandled rejection before then.
Object.values(runs).forEach((run) => run?.catch(() => undefined));

t.test("https:// to a plaintext server (Node): one line, once, exit 3", async (t) => {
  assertOneLine(t, await runs.plaintext, "signaling-speaks-plaintext", new RegExp(`speaks plaintext, not TLS: use --signaling-addr http://127\\.0\\.0\\.1:${plain.port}$`));
});

t.test("http:// to a TLS server (Deno, the old tool's habit): use https:// with --ca", async (t) => {
  assertOneLine(t, await runs.speaksTls, "signaling-speaks-tls", new RegExp(`speaks TLS: use --signaling-addr https://127\\.0\\.0\\.1:${tls.port} --ca FILE`));
});

t.test("a --ca that is not PEM is refused before connecting, exit 2", async (t) => {
  const run = await runs.notPem;
  t.equal(run.code, 2, "exit code 2");
  t.same(run.stderr, [`ice-test: --ca ${dir}/notes.txt is not a PEM certificate (it holds no "-----BEGIN CERTIFICATE-----" block): pass the PEM file the server's --cert-out wrote, or its CA's certificate`], "one line naming the file");
});

t.test("no route to the address: unreachable", { skip: !isRoot && "needs root for a private network namespace (unshare --net)" }, async (t) => {
  assertOneLine(t, (await runs.unreachable)!, "signaling-unreachable", /No route to 192\.0\.2\.1:443 \(ENETUNREACH\): this machine cannot reach that address/);
});

// Node's IPv6 case runs in-process in signaling-errors.test.ts; Deno's untrusted case in cli.test.ts.
t.test("https://<IPv4> and https://[IPv6] work on Node and Deno, with no deprecation warning", async (t) => {
  for (const [name, run] of Object.entries({ ipv4Node: runs.ipv4Node, ipv4Deno: runs.ipv4Deno, ipv6Deno: runs.ipv6Deno })) {
    const result = await run;
    t.ok(result.stdout.some((line) => / registered as /.test(line)), `${name}: registered (${result.reason})`);
    t.match(result.reason, /^no-peer: /, `${name}: got as far as waiting for a peer`);
    t.notMatch(result.stderr.join("\n"), /DEP0123|servername/, `${name}: no warning about an IP servername`);
  }
});
