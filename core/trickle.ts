// Remote candidates can arrive before the description they belong to (signaling is faster than
// SDP handling, and either peer may start first). They are held here and applied, in order, once
// the remote description is set; end-of-candidates is held the same way.

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
    return this.applyOrHold(candidate);
  }

  end(): Promise<void> {
    return this.applyOrHold(null);
  }

  /** Applies everything held; returns how many candidates that was. */
  async descriptionSet(): Promise<number> {
    this.ready = true;
    const held = this.held;
    this.held = [];
    for (const candidate of held) await this.apply(candidate);
    return held.filter((candidate) => candidate !== null).length;
  }

  private applyOrHold(candidate: CandidateInit | null): Promise<void> {
    if (this.ready) return this.apply(candidate);
    this.held.push(candidate);
    return Promise.resolve();
  }
}
