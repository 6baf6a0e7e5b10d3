// The --redis flag: a Redis URL turns on the shared broker; anything else is a usage error.
import t from "tap";
import { parseServerCommand, UsageError } from "../server/options.ts";

const none = () => undefined;

t.test("--redis takes a redis:// or rediss:// URL, also from ICE_TEST_REDIS", async (t) => {
  const run = (argv: string[], env: Record<string, string> = {}) => {
    const command = parseServerCommand(argv, (name) => env[name]);
    return command.kind === "run" ? command.options.redis : "not a run";
  };
  t.equal(run(["--insecure"]), undefined, "without --redis the server keeps its in-memory broker");
  t.equal(run(["--insecure", "--redis", "redis://127.0.0.1:6379"]), "redis://127.0.0.1:6379", "a redis:// URL is taken as given");
  t.equal(run(["--insecure"], { ICE_TEST_REDIS: "rediss://:pw@cache.example:6380/2" }), "rediss://:pw@cache.example:6380/2", "ICE_TEST_REDIS works too");
  t.throws(() => parseServerCommand(["--insecure", "--redis", "localhost:6379"], none), new UsageError('Invalid --redis "localhost:6379": use a URL like redis://127.0.0.1:6379 (rediss:// for TLS)'), "a URL without scheme is a usage error naming the flag");
});
