// The operations flags, parsed as a pure function of argv and environment.
import t from "tap";
import { parseServerCommand, UsageError, type OpsOptions } from "../server/options.ts";

function ops(argv: string[], env: Record<string, string> = {}): OpsOptions {
  const command = parseServerCommand(argv, (name) => env[name]);
  if (command.kind !== "run") throw new Error("expected a run command");
  return command.options.ops;
}

function usage(argv: string[]): string {
  try {
    parseServerCommand(argv, () => undefined);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

t.test("operations flags: values, environment and defaults", async (t) => {
  t.same(ops(["--insecure"]), { tlsClientCa: undefined, metricsPort: undefined, metricsHost: "127.0.0.1", logFormat: undefined, logLevel: "info", shutdownGraceMs: 5000 }, "defaults: no metrics, format from the terminal, info, 5 s grace");
  t.same(
    ops(["--self-signed", "--tls-client-ca", "ca.pem", "--metrics-port", "9464", "--metrics-host", "0.0.0.0", "--log-format", "text", "--log-level", "debug", "--shutdown-grace", "1.5"]),
    { tlsClientCa: "ca.pem", metricsPort: 9464, metricsHost: "0.0.0.0", logFormat: "text", logLevel: "debug", shutdownGraceMs: 1500 },
    "every flag",
  );
  t.equal(ops(["--insecure"], { ICE_TEST_LOG_FORMAT: "json", ICE_TEST_METRICS_PORT: "0" }).metricsPort, 0, "from the environment too");
});

t.test("operations flags: usage errors say what is wrong", async (t) => {
  t.equal(usage(["--insecure", "--tls-client-ca", "ca.pem"]), "--tls-client-ca needs TLS: it cannot go with --insecure", "client certificates need TLS");
  t.equal(usage(["--insecure", "--metrics-host", "0.0.0.0"]), "--metrics-host needs --metrics-port N", "a metrics host without a port");
  t.equal(usage(["--insecure", "--log-format", "xml"]), 'Invalid --log-format "xml": use json, text', "an unknown log format");
  t.equal(usage(["--insecure", "--log-level", "loud"]), 'Invalid --log-level "loud": use debug, info, warn, error', "an unknown level");
  t.match(usage(["--insecure", "--shutdown-grace", "0"]), /^Invalid --shutdown-grace "0"/, "a zero grace");
});
