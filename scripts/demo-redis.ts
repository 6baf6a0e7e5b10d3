// For `npm run demo -- --instances 2`: a throwaway redis-server on a free port in `dir`, without
// persistence, that the demo's server instances share.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

const START_LIMIT_MS = 10_000;

export async function startDemoRedis(dir: string): Promise<{ url: string; pid: number | undefined; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${START_LIMIT_MS / 1000} s`)), START_LIMIT_MS);
    child.once("error", (err) => reject(new Error(`Cannot start redis-server (apt-get install redis-server): ${err.message}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!/Ready to accept connections/.test(line)) return;
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A TCP port nobody listens on at this moment, for a child that takes its port as an argument. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
