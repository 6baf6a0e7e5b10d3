// The peer's Subscribe stream, kept open across breaks: when it drops mid-session (connection lost,
// server restarted a stream, heartbeats stopped) it is opened again with a backoff and resumed
// after the last sequence seen, so every event arrives exactly once and in order. What cannot be
// resumed (replaced by another client, session expired, events no longer held) ends it with the
// server's reason.
import { status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import type { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { PeerFailure } from "./failure.ts";

/** Statuses after which the same session can subscribe again. */
const RETRYABLE = new Set<status>([status.UNAVAILABLE, status.INTERNAL, status.UNKNOWN, status.CANCELLED, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED]);
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;
/** Attempts in a row without a subscribed stream: about 10 s, longer than the server's default grace. */
const MAX_ATTEMPTS = 8;
/** Heartbeats missed before the stream counts as dead. */
const MISSED_HEARTBEATS = 3;

export interface ResumeHooks {
  /** Opens a Subscribe call, resuming after `resumeAfter` when defined. */
  open(resumeAfter: bigint | undefined): ClientReadableStream<SubscribeResponse>;
  /** Every event once, in order (heartbeats and the repeated `subscribed` of a resume excluded). */
  onEvent(event: SubscribeResponse): void;
  /** Told once: a failure, or nothing when close() ended it. */
  onEnd(failure?: PeerFailure): void;
  /** The failure to report for a status that ends the stream. */
  failure(err: ServiceError): PeerFailure;
  /** The failure to report when the server ends the stream without an error. */
  closedByServer(): PeerFailure;
  /** The instance stopped answering (UNAVAILABLE, silence): the next attempts may go to another one. */
  onUnreachable?(): void;
  /** A break and the resume that follows, for the report. */
  onBreak?(why: string, resumeAfter: bigint, attempt: number): void;
  onResumed?(resumeAfter: bigint): void;
}

export class ResumableStream {
  private stream: ClientReadableStream<SubscribeResponse> | undefined;
  /** The last sequence delivered; undefined until the first stream said `subscribed`. */
  private last: bigint | undefined;
  private attempts = 0;
  private closed = false;
  private ended = false;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private silenceMs = 0;

  constructor(private readonly hooks: ResumeHooks) {}

  start(): void {
    this.connect(undefined);
  }

  /** Ends it on purpose: no failure is reported. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.watchdog);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.finish();
  }

  private connect(resumeAfter: bigint | undefined): void {
    const stream = this.hooks.open(resumeAfter);
    this.stream = stream;
    stream.on("data", (event: SubscribeResponse) => this.onData(stream, event, resumeAfter));
    stream.on("error", (err: ServiceError) => this.onBroken(stream, err));
    stream.on("end", () => this.onBroken(stream, undefined));
  }

  private onData(stream: ClientReadableStream<SubscribeResponse>, event: SubscribeResponse, resumeAfter: bigint | undefined): void {
    if (stream !== this.stream) return;
    this.armWatchdog(stream, event);
    const kind = event.event?.$case;
    if (kind === "heartbeat") return;
    if (kind === "subscribed") {
      this.attempts = 0;
      if (resumeAfter !== undefined) {
        this.hooks.onResumed?.(resumeAfter);
        return;
      }
      this.last = 0n;
      this.hooks.onEvent(event);
      return;
    }
    // A resume replays from the resume point: anything at or before it was delivered already.
    if (this.last !== undefined && event.sequence <= this.last) return;
    this.last = event.sequence;
    this.hooks.onEvent(event);
  }

  /** Silence for a few heartbeats means a dead path, whatever TCP believes. */
  private armWatchdog(stream: ClientReadableStream<SubscribeResponse>, event: SubscribeResponse): void {
    if (event.event?.$case === "heartbeat") this.silenceMs = event.event.value.intervalMs * MISSED_HEARTBEATS;
    if (this.silenceMs <= 0) return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (stream !== this.stream) return;
      this.stream = undefined;
      stream.cancel();
      this.hooks.onUnreachable?.();
      this.reconnect(`no heartbeat for ${this.silenceMs} ms`);
    }, this.silenceMs);
  }

  private onBroken(stream: ClientReadableStream<SubscribeResponse>, err: ServiceError | undefined): void {
    if (stream !== this.stream || this.closed) return;
    this.stream = undefined;
    clearTimeout(this.watchdog);
    if (!err) return this.fail(this.hooks.closedByServer());
    const resumable = this.last !== undefined && RETRYABLE.has(err.code) && this.attempts < MAX_ATTEMPTS;
    if (!resumable) return this.fail(this.hooks.failure(err));
    if (err.code === status.UNAVAILABLE) this.hooks.onUnreachable?.();
    this.reconnect(`${status[err.code]}: ${err.details}`);
  }

  private reconnect(why: string): void {
    const resumeAfter = this.last ?? 0n;
    this.attempts++;
    this.hooks.onBreak?.(why, resumeAfter, this.attempts);
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.attempts - 1));
    this.retry = setTimeout(() => {
      if (!this.closed) this.connect(resumeAfter);
    }, delay);
  }

  private fail(failure: PeerFailure): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    this.finish(failure);
  }

  private finish(failure?: PeerFailure): void {
    if (this.ended) return;
    this.ended = true;
    this.hooks.onEnd(failure);
  }
}
