// Remote candidates can arrive before the description they belong to (signaling is faster than
// SDP handling, and either peer may start first). They are held here and applied, in order, once
// the remote description is set; end-of-candidates is held the same way. Each is started without
// waiting for the one before: werift resolves a `.local` name for up to 10 s, and the patched
// werift makes end-of-candidates wait for those lookups itself.

export interface CandidateInit {
  readonly candidate: string;
  readonly sdpMid?: string;
  readonly sdpMLineIndex?: number;
}

/** `null` means end-of-candidates, as in the WebRTC API. */
type Apply = (candidate: CandidateInit | null) => Promise<void>;

export class RemoteCandidates {
  private held: (CandidateInit | null)[] = [];
  private ready = false;

  constructor(private readonly apply: Apply) {}

  add(candidate: CandidateInit): Promise<void> {
    return this.applyOrHold(mediaSectionOf(candidate));
  }

  end(): Promise<void> {
    return this.applyOrHold(null);
  }

  /** Applies everything held; returns how many candidates that was. */
  async descriptionSet(): Promise<number> {
    this.ready = true;
    const held = this.held;
    this.held = [];
    // A candidate werift rejects is no reason to fail the negotiation: the others may still work.
    await Promise.allSettled(held.map((candidate) => this.apply(candidate)));
    return held.filter((candidate) => candidate !== null).length;
  }

  private applyOrHold(candidate: CandidateInit | null): Promise<void> {
    if (this.ready) return this.apply(candidate);
    this.held.push(candidate);
    return Promise.resolve();
  }
}

/**
 * pion sends `sdpMid: ""`, which names no media section, so werift rejects the candidate. ice-test
 * negotiates one bundled section: use the m-line index, or that only section.
 */
export function mediaSectionOf(candidate: CandidateInit): CandidateInit {
  if (candidate.sdpMid !== "") return candidate;
  return { candidate: candidate.candidate, sdpMLineIndex: candidate.sdpMLineIndex ?? 0 };
}
