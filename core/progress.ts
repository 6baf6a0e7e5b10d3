// While a peer waits for another to show up, it says so: on a terminal a live status line (room,
// time waited, who came and went), otherwise a line every few seconds. It watches the report's own
// steps, so the session needs no hooks. When other peers stay in the room but none calls this one,
// they are most likely meeting each other: an offerer calls the first peer it sees.
import { Report, type Fields } from "./report.ts";
import { sanitize } from "./sanitize.ts";

/** How early a timer may fire, by the run's own clock. */
const TIMER_SLACK_MS = 50;
/** Seconds between lines when the output is not a terminal (and between JSON "waiting" events). */
export const PIPED_EVERY_MS = 5_000;
const LIVE_EVERY_MS = 1_000;
/** How long others may share the room without calling us before we say they are paired. */
export const PAIRED_AFTER_MS = 10_000;

export interface ProgressOutput {
  /** Writes one line. */
  line(text: string): void;
  /** Replaces the live status line (a terminal only); "" clears it. */
  status?(text: string): void;
}

export class ProgressReport extends Report {
  private waitingSince: number | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Peers in the room, with when we first saw them there. */
  private readonly present = new Map<string, number>();
  private lastChange = "";
  private pairedSaid = false;
  private statusShown = false;

  constructor(
    private readonly output: ProgressOutput,
    private readonly isJson: boolean,
    private readonly room: string,
    private readonly role: "offerer" | "answerer",
    private readonly everyMs = output.status && !isJson ? LIVE_EVERY_MS : PIPED_EVERY_MS,
    private readonly pairedAfterMs = PAIRED_AFTER_MS,
  ) {
    const sink: { write?: (text: string) => void } = {};
    super((text) => sink.write?.(text), isJson);
    sink.write = (text) => this.writeLine(text);
  }

  override step(event: string, text: string, fields: Fields = {}): void {
    super.step(event, text, fields);
    this.observe(event, fields as Record<string, unknown>);
  }

  override block(event: string, lines: readonly string[], fields: Fields): void {
    this.stop();
    super.block(event, lines, fields);
  }

  /** Ends the waiting display; the run calls it on every way out. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.waitingSince = undefined;
    this.clearStatus();
  }

  private observe(event: string, fields: Record<string, unknown>): void {
    switch (event) {
      case "subscribed":
        for (const peer of (fields["peers"] as string[] | undefined) ?? []) this.present.set(peer, this.elapsed());
        this.waitingSince = this.elapsed();
        this.timer = setInterval(() => this.tick(), this.everyMs);
        this.tick();
        return;
      case "peer-joined":
        this.present.set(String(fields["peerId"]), this.elapsed());
        this.lastChange = `${String(fields["peerId"])} joined`;
        return;
      case "peer-left":
        this.present.delete(String(fields["peerId"]));
        this.lastChange = `${String(fields["peerId"])} left`;
        return;
      case "peer-chosen":
      case "offer-received":
      case "error":
        this.stop();
        return;
    }
  }

  private tick(): void {
    if (this.waitingSince === undefined) return;
    const now = this.elapsed();
    const waited = Math.round((now - this.waitingSince) / 1000);
    const others = [...this.present.keys()];
    const inRoom = others.length === 0 ? "nobody else in the room" : `in the room: ${others.join(", ")}`;
    const change = this.lastChange ? `; last: ${this.lastChange}` : "";
    const text = `waiting for a peer in room ${this.room}: ${waited} s, ${inRoom}${change}`;
    if (this.output.status && !this.isJson) {
      this.output.status(`  … ${sanitize(text)}`);
      this.statusShown = true;
    } else if (waited > 0) {
      super.step("waiting", text, { room: this.room, waitedMs: Math.round(now - this.waitingSince), peers: others });
    }
    this.sayIfPaired(now, others);
  }

  /** Others who have been here a while and never called: they are meeting each other. */
  private sayIfPaired(now: number, others: string[]): void {
    if (this.pairedSaid || this.role !== "answerer" || others.length === 0) return;
    // Timers may fire a fraction of a millisecond early by the run's own clock: the tick meant for
    // the tenth second must still count as ten seconds.
    const settled = others.filter((peer) => now - (this.present.get(peer) ?? now) + TIMER_SLACK_MS >= this.pairedAfterMs);
    if (settled.length === 0) return;
    this.pairedSaid = true;
    const who = settled.join(", ");
    const text = `${who} ${settled.length === 1 ? "has" : "have"} been in room ${this.room} for ${Math.round(this.pairedAfterMs / 1000)} s without calling this peer: ${settled.length === 1 ? "it is" : "they are"} most likely meeting another peer (an offerer calls the first answerer it sees). Meet in a room of your own: --room NAME on both sides`;
    this.clearStatus();
    super.step("peers-busy", text, { room: this.room, peers: settled });
  }

  private writeLine(text: string): void {
    const redraw = this.statusShown;
    this.clearStatus();
    this.output.line(text);
    if (redraw && this.waitingSince !== undefined) this.tick();
  }

  private clearStatus(): void {
    if (!this.statusShown) return;
    this.statusShown = false;
    this.output.status?.("");
  }
}
