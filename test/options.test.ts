import t from "tap";
import { parseCommand, parseDuration, type PeerOptions } from "../core/options.ts";
import { PeerFailure } from "../core/failure.ts";

const noEnv = () => undefined;

function run(argv: string[], env: (name: string) => string | undefined = noEnv): PeerOptions {
  const command = parseCommand(argv, env);
  if (command.kind !== "run") throw new Error(`expected a run command, got ${command.kind}`);
  return command.options;
}

function usageMessage(argv: string[]): string {
  try {
    parseCommand(argv, noEnv);
  } catch (err) {
    if (err instanceof PeerFailure && err.kind === "usage") return err.message;
    throw err;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

t.test("the old Go tool's command line works as its README wrote it", async (t) => {
  const options = run(["-role", "answerer", "-signaling-addr", "http://160.92.91.178:443", "-with-turn=false"]);
  t.equal(options.role, "answerer", "single-dash -role is the role");
  t.same(options.signaling, { url: "http://160.92.91.178:443", address: "160.92.91.178:443", host: "160.92.91.178", tls: false }, "http:// means plaintext, port kept");
  t.equal(options.withTurn, false, "-with-turn=false turns TURN off");
});

t.test("GNU-style flags and defaults", async (t) => {
  const options = run(["--role=offerer", "--signaling-addr", "https://signal.example:8443", "--with-turn", "--json", "--messages", "3"]);
  t.equal(options.role, "offerer");
  t.equal(options.signaling.tls, true, "https:// means TLS");
  t.equal(options.signaling.address, "signal.example:8443");
  t.equal(options.withTurn, true, "--with-turn alone is true");
  t.equal(options.json, true);
  t.equal(options.messages, 3);
  t.equal(options.room, "ice-test", "default room");
  t.equal(options.timeoutMs, 30_000, "default timeout 30 s");
  t.equal(options.waitMs, 300_000, "waits 5 minutes for a peer by default");
  t.equal(run(["--role", "offerer", "--wait", "0"]).waitMs, undefined, "--wait 0 waits for ever");
  t.equal(run(["--role", "offerer", "--signaling-addr", "https://h"]).signaling.address, "h:443", "https without a port means 443");
});

t.test("TURN settings: --turn implies TURN, password from TURN_PASSWORD", async (t) => {
  const options = run(["--role", "offerer", "--turn", "turn:10.0.0.1:3478?transport=tcp", "--turn-user", "u"], (n) => (n === "TURN_PASSWORD" ? "secret" : undefined));
  t.equal(options.withTurn, true, "--turn without --with-turn still uses TURN");
  t.equal(options.turnPassword, "secret", "TURN_PASSWORD is read as the old tool did");
  t.same(run(["--role", "offerer", "--stun", "stun:a:3478", "--stun", "stun:b:3478"]).stun, ["stun:a:3478", "stun:b:3478"], "--stun repeats");
});

t.test("the last of repeated flags wins, as in Go", async (t) => {
  t.equal(run(["--role", "offerer", "--room", "a", "--room", "b"]).room, "b");
  t.equal(run(["--role", "offerer", "--timeout", "5s", "--timeout", "40s"]).timeoutMs, 40_000);
});

t.test("durations accept Go style and plain seconds", async (t) => {
  t.equal(parseDuration("timeout", "1m30s"), 90_000);
  t.equal(parseDuration("timeout", "500ms"), 500);
  t.equal(parseDuration("timeout", "45"), 45_000);
  t.throws(() => parseDuration("timeout", "soon"), /is not a duration/);
});

t.test("bad command lines are usage errors that say what is wrong", async (t) => {
  t.match(usageMessage([]), /--role is required/, "missing role");
  t.match(usageMessage(["--role", "caller"]), /must be offerer or answerer, not "caller"/, "bad role");
  t.match(usageMessage(["--role", "offerer", "--bogus", "1"]), /Unknown flag --bogus/, "unknown flag");
  t.match(usageMessage(["--role", "offerer", "stray"]), /Unexpected argument "stray"/, "positional argument");
  t.match(usageMessage(["--role", "offerer", "--signaling-addr", "ftp://x"]), /https:\/\/ \(TLS\) or http:\/\//, "bad scheme");
  t.match(usageMessage(["--role", "offerer", "--room", "a b"]), /--room "a b" must be 1 to 64 characters/, "bad room");
  t.match(usageMessage(["--role", "offerer", "--messages", "-1"]), /--messages must be a whole number/, "bad count");
  t.match(usageMessage(["--role", "offerer", "--turn", "http://x"]), /is not a TURN URL/, "bad TURN URL");
  t.match(usageMessage(["--role", "offerer", "--turn", "turn:x:3478"]), /--turn needs --turn-user/, "TURN without user");
  t.match(usageMessage(["--role", "offerer", "--relay-only", "--with-turn=false"]), /contradicts/, "relay-only without TURN");
  t.match(usageMessage(["--role", "offerer", "--room"]), /--room needs a value/, "flag without its value");
});

t.test("--help and --version are commands, not runs", async (t) => {
  t.equal(parseCommand(["--help"], noEnv).kind, "help");
  t.equal(parseCommand(["-h"], noEnv).kind, "help");
  t.equal(parseCommand(["--version"], noEnv).kind, "version");
});

t.test("--signaling-addr takes a comma-separated list of instances of one service", async (t) => {
  const target = run(["--role", "offerer", "--signaling-addr", "http://10.0.0.1:8090, http://10.0.0.2:8090"]).signaling;
  t.equal(target.address, "10.0.0.1:8090", "the first listed instance is used first");
  t.same(target.failover?.map((other) => other.address), ["10.0.0.2:8090"], "the others are kept, in order, for failover");
  t.match(usageMessage(["--role", "offerer", "--signaling-addr", "https://a:443,http://b:80"]), /one scheme for all instances/, "mixed schemes are refused");
  t.match(usageMessage(["--role", "offerer", "--signaling-addr", "http://a:80,,http://b:80"]), /empty entry/, "an empty entry is refused");
});
