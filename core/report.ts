// The output is the product: every step, as it happens, with the milliseconds since start, as a
// line a person reads or (with --json) a JSON line a script parses. Both carry the same facts.

export type Fields = object;

export class Report {
  private readonly started = performance.now();

  constructor(
    private readonly write: (line: string) => void,
    private readonly json: boolean,
    private readonly label = "",
  ) {}

  /** Milliseconds since the run started, to 0.1 ms. */
  elapsed(): number {
    return Math.round((performance.now() - this.started) * 10) / 10;
  }

  /** One step: `text` for people, `event` + `fields` for scripts. */
  step(event: string, text: string, fields: Fields = {}): void {
    const t = this.elapsed();
    if (this.json) {
      // Wall-clock time too, to line up with the server's ISO 8601 log.
      this.write(JSON.stringify({ t, time: new Date().toISOString(), event, ...fields }, jsonValue));
      return;
    }
    this.write(`${this.label}${t.toFixed(1).padStart(9)} ms  ${text}`);
  }

  /** A block of lines for people, or one object for scripts. */
  block(event: string, lines: readonly string[], fields: Fields): void {
    if (this.json) {
      this.write(JSON.stringify({ t: this.elapsed(), time: new Date().toISOString(), event, ...fields }, jsonValue));
      return;
    }
    for (const line of lines) this.write(`${this.label}${line}`);
  }
}

function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}
