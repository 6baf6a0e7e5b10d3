// Connections to Redis for the broker, and the one rule for their failures: when Redis cannot be
// reached, a call fails with UNAVAILABLE saying so, and the connection keeps retrying on its own,
// so the server recovers when Redis returns without a restart.
//
// ioredis rather than node-redis: it reconnects and re-subscribes channels by itself, and sends
// each Lua script once and then calls it by SHA (defineCommand); the field notes measured its
// pub/sub at ~0.09 ms p50 on this machine.
import { status } from "@grpc/grpc-js";
import { Redis, ReplyError } from "ioredis";
import { SignalingError } from "./errors.ts";

/** How long a command may wait for Redis before the call fails UNAVAILABLE. */
const COMMAND_TIMEOUT_MS = 2_000;
const START_LIMIT_MS = 5_000;
/** Reply errors that mean "Redis is there but cannot serve now", not a bug in a script. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/;

export function openRedis(url: string, name: string, onStateChange: (state: string, detail?: string) => void): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    lazyConnect: true,
    // Fail at once while disconnected rather than queue: a queued SendMessage could run long after
    // its caller gave up. And never re-send a command whose connection broke: it may have run.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Auto-pipelining builds a Pipeline object per batch and sends it from setImmediate: on a
    // relay's path that is a wait and more CPU per message than the write it might save.
    enableAutoPipelining: false,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
  });
  let lastError = "";
  redis.on("error", (err: Error) => {
    // ioredis repeats the error on every retry: report each new one once.
    if (err.message === lastError) return;
    lastError = err.message;
    onStateChange("redis-error", err.message);
  });
  redis.on("ready", () => {
    if (lastError) onStateChange("redis-ready");
    lastError = "";
  });
  return redis;
}

/** Connects, or fails with UNAVAILABLE naming the URL. */
export async function connectRedis(redis: Redis, url: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${START_LIMIT_MS / 1000} s`)), START_LIMIT_MS);
  });
  try {
    await Promise.race([redis.connect(), limit]);
  } catch (err: unknown) {
    redis.disconnect();
    throw redisUnavailable(url, err);
  } finally {
    clearTimeout(timer);
  }
}

/** The status a failed Redis command gives the client: UNAVAILABLE unless it was our bug. */
export function fromRedisError(url: string, err: unknown): unknown {
  if (err instanceof SignalingError) return err;
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test((err as Error).message)) return err;
  return redisUnavailable(url, err);
}

export function redisUnavailable(url: string, err: unknown): SignalingError {
  const reason = err instanceof Error ? err.message : String(err);
  return new SignalingError(status.UNAVAILABLE, `The server cannot reach its Redis at ${redact(url)} (${reason}): try again shortly`, { cause: err });
}

/** A URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "(invalid URL)";
  }
}
