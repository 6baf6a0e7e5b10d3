// The one flag parser the server and the peer share: both flag styles, the environment, typos,
// npm's habit of keeping flags given without "--", and --help rendered from the table.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import t from "tap";
import { nodePrograms } from "./fixtures/node-bundles.ts";
import { untapped } from "./fixtures/untapped.ts";
import { closest, parseFlags, programName, renderHelp, UsageError, type CommandSpec } from "../core/flags.ts";
import { parseCommand } from "../core/options.ts";
import { PeerFailure } from "../core/failure.ts";
import { parseServerCommand } from "../server/options.ts";
import { VERSION } from "../core/version.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const SPEC: CommandSpec = {
  usage: "[options]",
  about: "A test command.",
  flags: [
    { name: "port", kind: "string", value: "N", help: "a port", default: "443" },
    { name: "with-turn", kind: "boolean", help: "use TURN" },
    { name: "stun", kind: "list", value: "URL", help: "STUN servers" },
    { name: "secret", kind: "string", value: "S", help: "a secret", alsoEnv: ["SECRET"], section: "Secrets" },
  ],
  guessFlag: (word) => (/^\d+$/.test(word) ? "port" : undefined),
};

const noEnv = () => undefined;
const plain = { program: "tool" };

function usageError(run: () => unknown): UsageError {
  try {
    run();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error("expected a usage error");
}

t.test("Go style and GNU style read the same", async (t) => {
  for (const argv of [["-port", "8443"], ["--port", "8443"], ["--port=8443"], ["-port=8443"]]) {
    t.equal(parseFlags(SPEC, argv, noEnv, plain).get("port")?.value, "8443", `${argv.join(" ")} sets the port`);
  }
  t.equal(parseFlags(SPEC, ["-with-turn=false"], noEnv, plain).bool("with-turn")?.value, false, "-with-turn=false is false");
  t.equal(parseFlags(SPEC, ["--no-with-turn"], noEnv, plain).bool("with-turn")?.value, false, "--no-with-turn is false");
  t.equal(parseFlags(SPEC, ["-with-turn"], noEnv, plain).bool("with-turn")?.value, true, "-with-turn alone is true");
  t.equal(parseFlags(SPEC, [], noEnv, plain).bool("with-turn"), undefined, "an absent boolean is undefined, so callers can tell");
  t.same(parseFlags(SPEC, ["--stun", "a", "-stun=b"], noEnv, plain).list("stun")?.value, ["a", "b"], "list flags repeat");
  t.equal(parseFlags(SPEC, ["--port", "1", "--port", "2"], noEnv, plain).get("port")?.value, "2", "the last of repeated flags wins, as in Go");
  t.ok(parseFlags(SPEC, ["-help"], noEnv, plain).help, "-help is help");
  t.ok(parseFlags(SPEC, ["-h"], noEnv, plain).help, "-h is help");
  t.ok(parseFlags(SPEC, ["--version"], noEnv, plain).version, "--version is standard");
});

t.test("the environment: ICE_TEST_<FLAG>, extra names, and the command line wins", async (t) => {
  const env = (name: string) => ({ ICE_TEST_PORT: "9000", ICE_TEST_WITH_TURN: "yes", ICE_TEST_STUN: "a, b", SECRET: "s" })[name];
  const flags = parseFlags(SPEC, [], env, plain);
  t.same(flags.get("port"), { value: "9000", name: "ICE_TEST_PORT" }, "a value says where it came from");
  t.equal(flags.bool("with-turn")?.value, true, "ICE_TEST_WITH_TURN=yes");
  t.same(flags.list("stun")?.value, ["a", "b"], "a list is comma-separated");
  t.equal(flags.get("secret", "SECRET")?.value, "s", "a named fallback variable");
  t.equal(parseFlags(SPEC, ["--port", "1"], env, plain).get("port")?.value, "1", "the flag beats the variable");
  t.match(usageError(() => parseFlags(SPEC, [], (n) => (n === "ICE_TEST_WITH_TURN" ? "maybe" : undefined), plain).bool("with-turn")).message, 'Invalid ICE_TEST_WITH_TURN "maybe"', "a bad boolean names the variable");
});

t.test("typos get a did-you-mean, stray words a guess", async (t) => {
  t.equal(usageError(() => parseFlags(SPEC, ["--prot", "1"], noEnv, plain)).message, "Unknown flag --prot: did you mean --port?", "a transposition");
  t.equal(usageError(() => parseFlags(SPEC, ["-with-trun"], noEnv, plain)).message, "Unknown flag -with-trun: did you mean --with-turn?", "single dash, as typed");
  t.equal(usageError(() => parseFlags(SPEC, ["--sec"], noEnv, plain)).message, "Unknown flag --sec: did you mean --secret?", "a unique prefix");
  t.equal(usageError(() => parseFlags(SPEC, ["--colour"], noEnv, plain)).message, "Unknown flag --colour", "nothing near: no guess");
  t.equal(usageError(() => parseFlags(SPEC, ["8095"], noEnv, plain)).message, 'Unexpected argument "8095": did you mean --port 8095?', "a bare port");
  t.equal(usageError(() => parseFlags(SPEC, ["--port"], noEnv, plain)).message, "--port needs a value (N)", "a missing value");
  t.equal(usageError(() => parseFlags(SPEC, ["--port", "--with-turn"], noEnv, plain)).message, "--port needs a value (N)", "a flag is not a value");
  t.equal(closest("signalling-addr", ["signaling-addr", "room"]), "signaling-addr", "British spelling");
  t.equal(closest("xyz", ["signaling-addr", "room"]), undefined, "far from everything");
});

t.test("npm run without --: the flags npm kept, and the line that works", async (t) => {
  // `npm run server --port 8095 --insecure` leaves npm_config_port=true, npm_config_insecure=true, argv ["8095"].
  const npm = { program: "npm run server --", npmScript: "server" };
  const env = (name: string) => ({ npm_config_port: "true", npm_config_with_turn: "" })[name];
  const err = usageError(() => parseFlags(SPEC, ["8095"], env, npm));
  t.equal(err.message, 'npm kept --port --with-turn for itself and passed on only "8095": flags reach the program only after "--"', "says what npm did");
  t.same(err.hints, ["try: npm run server -- --port 8095 --with-turn"], "and gives the values back to their flags");
  const bare = usageError(() => parseFlags(SPEC, ["8095"], noEnv, npm));
  t.same(bare.hints, ["try: npm run server -- --port 8095"], "`npm run server 8095`: the guess, after --");
  const allKept = usageError(() => parseFlags(SPEC, [], (n) => (n === "npm_config_with_turn" ? "true" : undefined), npm));
  t.match(allKept.message, /^npm kept --with-turn for itself: flags reach the program only after "--"/, "nothing passed on at all");
  t.same(programName((n) => ({ npm_lifecycle_event: "server", npm_lifecycle_script: "tsx server/main.ts" })[n], "ice-test server", /server\/main\.ts/), npm, "npm run server names itself");
  t.same(programName((n) => ({ npm_lifecycle_event: "test", npm_lifecycle_script: "bash scripts/test.sh" })[n], "ice-test server", /server\/main\.ts/), { program: "ice-test server" }, "another script that starts us does not count");
});

t.test("--help is rendered from the table, with defaults and variables", async (t) => {
  const help = renderHelp(SPEC, "tool");
  t.match(help, /^Usage: tool \[options\]/, "the program as passed in");
  t.match(help, /  --port N +a port \[default: 443\]/, "value placeholder and default");
  t.match(help, /Secrets:\n  --secret S +a secret \[env: SECRET\]/, "sections and extra variables");
  t.match(help, /--help, -h +this text\n  --version/, "the standard flags");
  t.match(help, /ICE_TEST_<FLAG>/, "the environment fallback is documented");
});

t.test("server and peer share the parser: Go style, --version, did-you-mean", async (t) => {
  t.equal((parseServerCommand(["-port", "443", "-insecure"], noEnv) as { options: { port: number } }).options.port, 443, "server -port 443 (the old tool's style)");
  t.same(parseServerCommand(["-help"], noEnv), { kind: "help" }, "server -help");
  t.same(parseServerCommand(["--version"], noEnv), { kind: "version" }, "server --version");
  t.match(usageError(() => parseServerCommand(["--insecure", "--stun-prot", "1"], noEnv)).message, "did you mean --stun-port?", "server typo");
  try {
    parseCommand(["-role", "offerer", "--signalling-addr", "http://x"], noEnv);
    t.fail("a typo must be a usage error");
  } catch (err) {
    t.ok(err instanceof PeerFailure && err.kind === "usage", "the peer's typo is a usage failure (exit 2)");
    t.equal((err as Error).message, "Unknown flag --signalling-addr: did you mean --signaling-addr?", "with the guess");
  }
  t.equal(parseCommand(["--role", "offerer"], (n) => (n === "ICE_TEST_ROOM" ? "lab" : undefined)).kind === "run" && (parseCommand(["--role", "offerer"], (n) => (n === "ICE_TEST_ROOM" ? "lab" : undefined)) as { options: { room: string } }).options.room, "lab", "the peer reads ICE_TEST_ROOM");
});

/** The server or the peer (bundled, see node-bundles.ts) as its own process. */
function runCli(program: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(ICE_TEST_|TURN_|npm_)/.test(name)));
  const [command, ...argv] = [...untapped(process.execPath, program), ...args];
  const child = spawn(command!, argv, { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

// Spawning is the slow part: all of these start now, side by side, and each test awaits its own.
const npmServer = { npm_lifecycle_event: "server", npm_lifecycle_script: "tsx server/main.ts", npm_config_port: "true", npm_config_insecure: "true" };
const npmPeer = { npm_lifecycle_event: "peer:node", npm_lifecycle_script: "tsx client-node/main.ts", npm_config_role: "true" };
const programs = await nodePrograms();
const spawned = {
  help: runCli(programs.server, ["-help"]),
  version: runCli(programs.server, ["--version"]),
  stray: runCli(programs.server, ["8095"]),
  npm: runCli(programs.server, ["8095"], npmServer),
  peerStray: runCli(programs.peer, ["answerer"]),
  peerNpm: runCli(programs.peer, ["offerer"], npmPeer),
};

t.test("the server as typed: -help, --version, a stray port, npm's swallowed flags", async (t) => {
  const help = await spawned.help;
  t.equal(help.code, 0, "-help exits 0");
  t.match(help.stdout, /^Usage: ice-test server /, "and prints the server's help");
  const version = await spawned.version;
  t.equal(version.stdout.trim(), `ice-test server ${VERSION} (node ${process.versions.node})`, "--version on the server");
  const stray = await spawned.stray;
  t.equal(stray.code, 2, "a stray word is a usage error");
  t.equal(stray.stderr.split("\n")[0], 'ice-test server: Unexpected argument "8095": did you mean --port 8095?', "with the guess");
  const npm = await spawned.npm;
  t.same(npm.stderr.trim().split("\n"), [
    'ice-test server: npm kept --insecure --port for itself and passed on only "8095": flags reach the program only after "--"',
    "  try: npm run server -- --insecure --port 8095",
    "Run npm run server -- --help for the options.",
  ], "`npm run server --port 8095 --insecure` is told what to type");
});

t.test("the peer as typed: a stray role and a typo, exit 2 with the program's own name", async (t) => {
  const stray = await spawned.peerStray;
  t.equal(stray.code, 2, "exit 2");
  t.same(stray.stderr.trim().split("\n"), ['ice-test: Unexpected argument "answerer": did you mean --role answerer?', "Run ice-test peer --help for the list of flags."], "guess and the real command");
  const npm = await spawned.peerNpm;
  t.match(npm.stderr, /npm kept --role for itself and passed on only "offerer"[^\n]*\n  hint: try: npm run peer:node -- --role offerer\nRun npm run peer:node -- --help/, "under npm, the npm command");
});
