// Every way a peer run can end badly, each with its exit code, so scripts can tell a typo from a
// blocked network without parsing text.
export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  signaling: 3,
  connection: 4,
  interrupted: 130,
} as const;

export type FailureKind = Exclude<keyof typeof EXIT_CODES, "ok">;

export class PeerFailure extends Error {
  override readonly name = "PeerFailure";
  readonly kind: FailureKind;
  /** A stable, machine-readable reason, e.g. "turn-refused". */
  readonly reason: string;
  /** What a person could check or change next. */
  readonly hints: string[];

  constructor(kind: FailureKind, reason: string, message: string, options: { hints?: string[]; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.reason = reason;
    this.hints = options.hints ?? [];
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export function usageError(message: string, hints: string[] = []): PeerFailure {
  return new PeerFailure("usage", "usage", message, { hints });
}

/** Anything thrown becomes a PeerFailure; an unexpected error keeps its message but is "internal". */
export function asFailure(err: unknown): PeerFailure {
  if (err instanceof PeerFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PeerFailure("internal", "internal", `Unexpected error: ${message}`, {
    hints: ["This is a bug in ice-test or a library it uses: please report it with this run's output"],
    cause: err,
  });
}
