// Regression: a server whose stdout reader has gone (a closed pipe, a dead log shipper) must still
// stop on SIGTERM. SonicBoom's flushSync() loops forever on EPIPE, and a flush at exit hung here.
import t from "tap";
import { exitWithin, listeningPort, startServerProcess } from "./fixtures/server-process.ts";

t.test("regression: with its stdout reader gone, the server still stops on SIGTERM (a full flush looped forever on EPIPE)", async (t) => {
  const server = await startServerProcess(t, ["--insecure", "--host", "127.0.0.1", "--port", "0", "--no-stun"]);
  await listeningPort(server);
  server.closeStdout();
  server.signal("SIGTERM");
  t.equal(await exitWithin(server, 10_000), 0, "exit 0, the log lines dropped");
});
