// Who is alive, across instances. Each instance keeps a heartbeat key with a time to live; any
// instance that finds another's key gone hands that instance's sessions to the expiry clock (their
// peers have the grace period to resume elsewhere, else they leave with reason "shutdown"). Every
// instance also removes sessions whose grace period is over, at the deadlines it knows of and on
// every heartbeat for the rest; the Lua scripts make sure only one instance removes each.
import type { LeaveReason, PeerRecord } from "./broker.ts";
import type { ScriptedRedis } from "./redis-scripts.ts";

/** An instance is dead after this many missed heartbeats. */
const HEARTBEATS_TO_DIE = 5;
const SWEEP_BATCH = 100;

export interface LivenessOptions {
  redis: ScriptedRedis;
  prefix: string;
  instanceId: string;
  graceMs: number;
  heartbeatMs: number;
  leavePayload: (peerId: string, reason: LeaveReason) => Buffer;
  onExpire: (peer: PeerRecord, reason: LeaveReason) => void;
  /** The sessions this instance streams, with their epochs: re-claimed if we were taken for dead. */
  claimAll: () => (readonly [string, number])[];
}

export class RedisLiveness {
  private beatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  private sweeping = false;
  private sweepAgain = false;
  private stopped = false;

  constructor(private readonly options: LivenessOptions) {}

  async start(): Promise<void> {
    await this.heartbeat();
    this.beatTimer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.beatTimer.unref();
  }

  /** A session may expire at `deadline`: sweep then. */
  expiryAt(deadline: number): void {
    if (this.stopped || deadline >= this.sweepAt) return;
    clearTimeout(this.sweepTimer);
    this.sweepAt = deadline;
    this.sweepTimer = setTimeout(() => {
      this.sweepAt = Infinity;
      void this.sweep();
    }, Math.max(0, deadline - Date.now() + 1));
    this.sweepTimer.unref();
  }

  /**
   * Stops beating and hands this instance's sessions to the expiry clock, marked as left by
   * shutdown; so are the `released` ones (session id, epoch) if nobody subscribed again since.
   */
  async stop(released: readonly (readonly [string, number])[] = []): Promise<void> {
    this.stopped = true;
    clearInterval(this.beatTimer);
    clearTimeout(this.sweepTimer);
    const { redis, prefix, instanceId, graceMs } = this.options;
    await redis.icRetire(prefix, instanceId, Date.now() + graceMs, ...released.flat());
  }

  private async beat(): Promise<void> {
    try {
      const { redis, prefix, graceMs } = this.options;
      const alive = await this.heartbeat();
      if (!alive) await this.claimAll();
      await redis.icReap(prefix, Date.now() + graceMs);
      await this.sweep();
    } catch {
      // Redis is away; the next beat tries again.
    }
  }

  /** True if this instance was alive all along. */
  private async heartbeat(): Promise<boolean> {
    const { redis, prefix, instanceId, heartbeatMs } = this.options;
    return (await redis.icHeartbeat(prefix, instanceId, heartbeatMs * HEARTBEATS_TO_DIE)) === 1;
  }

  /** Redis lost us for a while (restarted, or too slow): the streams we still serve are ours. */
  private async claimAll(): Promise<void> {
    const { redis, prefix, instanceId } = this.options;
    await Promise.all(this.options.claimAll().map(([sid, epoch]) => redis.icClaim(prefix, sid, instanceId, epoch)));
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) {
      this.sweepAgain = true;
      return;
    }
    this.sweeping = true;
    try {
      do {
        this.sweepAgain = false;
        const due = await this.expireDue();
        if (due === SWEEP_BATCH) this.sweepAgain = true;
      } while (this.sweepAgain && !this.stopped);
    } catch {
      // Redis is away; the next beat sweeps.
    } finally {
      this.sweeping = false;
    }
  }

  private async expireDue(): Promise<number> {
    const { redis, prefix } = this.options;
    const now = Date.now();
    const due = (await redis.icDue(prefix, now, SWEEP_BATCH)) as [string, string, string, string, string, string][];
    for (const [sessionId, room, peerId, client, joined, orphan] of due) {
      const reason: LeaveReason = orphan === "shutdown" ? "shutdown" : "expired";
      const removed = await redis.icLeave(prefix, sessionId, reason, this.options.leavePayload(peerId, reason), now, now);
      if (removed !== 1) continue;
      this.options.onExpire({ room, peerId, client: JSON.parse(client), joinedAt: new Date(Number(joined)), sessionId }, reason);
    }
    return due.length;
  }
}
