// One builder at a time across processes (test files run in parallel): the others wait for the
// lock, then find the first one's output instead of overwriting it while it is in use.
import { mkdir, rmdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

/** Runs `work` holding the lock directory `lock`; a lock older than `staleMs` belongs to a builder that died. */
export async function withBuildLock<T>(lock: string, staleMs: number, work: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lock), { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const since = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (since > staleMs) await rmdir(lock).catch(() => undefined);
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}
