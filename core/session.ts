// One peer's run, from registration to bye: find the other peer, negotiate, trickle candidates,
// open the data channel, measure round trips, and say what happened or why it did not.
import type { RTCDataChannel, RTCPeerConnection, RTCSessionDescription } from "werift";
import type { EvidenceReport, PeerInfo, PeerMessage, RegisterResponse, Signal, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { SdpType } from "../gen/icetest/signaling/v1/signaling.ts";
import { describeCandidateLine, parseCandidate, type CandidateInfo } from "./candidates.ts";
import { deferred, type Deferred } from "./deferred.ts";
import { diagnose, type Phase } from "./diagnose.ts";
import { PeerFailure, asFailure } from "./failure.ts";
import { interrupted } from "./interrupt.ts";
import { chooseIceServers, type IceSetup } from "./ice-config.ts";
import type { PeerOptions } from "./options.ts";
import {
  candidatePairs,
  createPeerConnection,
  describePair,
  iceHasFailed,
  prepareToConnect,
  selectedPair,
  watchTransports,
  type SelectedPair,
  type StateListener,
} from "./peer-connection.ts";
import { PingPong } from "./pingpong.ts";
import type { Report } from "./report.ts";
import { SignalingChannel, type SignalingConnection } from "./signaling.ts";
import type { Summary, Timings } from "./summary.ts";
import { RemoteCandidates } from "./trickle.ts";
import { describeProbe, probeTurn, type TurnProbeResult } from "./turn-probe.ts";
import { buildEvidence } from "./evidence.ts";
import { describeNat, natTargets, startNatProbe, type NatProbe, type NatProbeResult } from "./nat-probe.ts";
import { pairTable, type PairRow } from "./pair-table.ts";
import { jointVerdict, type JointVerdict } from "./verdict.ts";

export const DATA_CHANNEL_LABEL = "ice-test";
const ICE_FAILURE_POLL_MS = 250;
/** How long a finished peer waits for the other's evidence; an old peer's bye ends it at once. */
const REMOTE_EVIDENCE_WAIT_MS = 3000;
/**
 * How long a finished run waits for its NAT probe before reporting what the probe knows: a NAT
 * that filters by port never lets the changed-port answer in, and that silence takes the probe's
 * whole timeout to prove; a successful run must not wait for it.
 */
const NAT_PROBE_GRACE_MS = 250;
/**
 * How old the offerer's candidates, gathered while it waits for the other peer, may be when that
 * peer shows up. Nothing is sent from their sockets meanwhile, and a NAT may drop an idle UDP
 * mapping after 30 s (RFC 4787 asks for 2 min; some keep less): a server-reflexive candidate
 * must still name the mapping when the checks start. Older, they are gathered afresh.
 */
const GATHERED_MAX_AGE_MS = 10_000;
/**
 * Diagnoses this peer can make on its own evidence, which say more than "the other peer left" when
 * the other side gives up first: causes on this side, NATs on both (both sides see the same), and
 * a peer that offered only private addresses.
 */
const OWN_EVIDENCE = new Set(["no-local-candidates", "turn-refused", "turn-unreachable", "udp-blocked", "nat-traversal-failed", "peer-unreachable",
  "turn-tls-untrusted", "turn-tls-expired", "turn-tls-wrong-name"]);

export interface SessionContext {
  readonly options: PeerOptions;
  readonly connection: SignalingConnection;
  readonly report: Report;
  /** "node 20.20.2 werift 0.24.4", sent to the other peer and shown in the summary. */
  readonly runtime: string;
  readonly version: string;
  /** PEM of a private CA for TURN over TLS (--turn-ca). */
  readonly turnCa?: string;
}

export class PeerSession {
  private readonly options: PeerOptions;
  private readonly report: Report;
  private readonly signaling: SignalingChannel;
  /** Rejects when the run must stop: timeout, interrupt, signaling lost, peer gone, ICE failed. */
  private readonly stopped = deferred<never>();
  private readonly remoteFound = deferred<string>();
  private readonly answerReceived = deferred<void>();
  /**
   * The answer is applied only once the offer is (the offerer applies it while it waits, but a
   * peer found at once can answer before werift has set it): it waits for this.
   */
  private localOfferSet = deferred<void>();
  private readonly channelOpen = deferred<RTCDataChannel>();
  private readonly timings: Timings = {};
  private readonly localCandidates: CandidateInfo[] = [];
  private readonly remoteCandidates: CandidateInfo[] = [];
  private phase: Phase = "waiting-for-peer";
  private phaseStartedAt = 0;
  private self = "";
  private remote: string | undefined;
  private pendingOffer: PeerMessage | undefined;
  private setup: IceSetup | undefined;
  private pc: RTCPeerConnection | undefined;
  /** The offerer's offer, made while the other peer is awaited. */
  private preparedOffer: Promise<RTCSessionDescription> | undefined;
  private trickle: RemoteCandidates | undefined;
  private pingPong: PingPong | undefined;
  private localGatheringComplete = false;
  /**
   * The offerer gathers while it waits for the other peer; what it gathers is held (not even
   * reported: a stale batch is thrown away) until its offer has reached that peer.
   */
  private heldLocalCandidates: (LocalCandidate | undefined)[] | undefined;
  private gatheringStartedAt = 0;
  private remoteEndOfCandidates = false;
  private selected: SelectedPair | undefined;
  private remoteGone = false;
  private ownEvidence: EvidenceReport | undefined;
  private remoteEvidenceReport: EvidenceReport | undefined;
  private turnProbe: TurnProbeResult | undefined;
  private readonly earlyMessages: (string | Uint8Array)[] = [];
  private natProbe: NatProbe | undefined;
  private nat: NatProbeResult | undefined;
  private pairRows: PairRow[] = [];
  private readonly remoteEvidence = deferred<EvidenceReport>();
  /** Resolves when the other peer said bye or left: no evidence will follow. */
  private readonly remoteDone = deferred<void>();
  private remoteLeftRoom = false;
  private verdict: JointVerdict | undefined;
  private readonly onState: StateListener = (kind, state) => this.onTransportState(kind, state);

  constructor(private readonly context: SessionContext) {
    this.options = context.options;
    this.report = context.report;
    this.signaling = new SignalingChannel(context.connection);
  }

  /** Stops the run from outside (Ctrl-C). */
  interrupt(): void {
    this.stopped.reject(interrupted(this.phase, this.timings.channelOpen !== undefined, this.pingPong?.pongs ?? 0));
  }

  /**
   * Ends the run on an error nothing caught (a bug, ours or a library's): the report still comes,
   * with the evidence so far. After the run's last step it changes nothing.
   */
  abort(err: unknown): void {
    this.stopped.reject(asFailure(err));
  }

  async run(): Promise<Summary> {
    let failure: PeerFailure | undefined;
    const timers: ReturnType<typeof setTimeout>[] = [];
    prepareToConnect();
    try {
      await this.race(this.join());
      const remote = await this.race(this.remoteFound.promise, this.options.waitMs, timers);
      this.enterPhase("negotiating");
      timers.push(this.startDeadline());
      await this.race(this.negotiate(remote));
      await this.race(this.exchange(await this.race(this.channelOpen.promise)));
      this.timings.done = this.report.elapsed();
      await this.shareEvidence(undefined);
      await this.sayBye("done");
    } catch (err) {
      failure = asFailure(err);
      // The message itself is in the summary: said once.
      this.report.step("error", `FAILED (${failure.reason}): see the summary`, { kind: failure.kind, reason: failure.reason, message: failure.message });
      if (failure.kind !== "signaling") await this.shareEvidence(failure);
      if (failure.kind !== "signaling" && failure.reason !== "peer-left") await this.sayBye(failure.reason);
    } finally {
      timers.forEach(clearTimeout);
      if (failure?.kind !== "signaling") await this.concludeWithPeer();
      await this.shutDown();
    }
    return this.summary(failure);
  }

  private async join(): Promise<void> {
    const response = await this.signaling.register(this.options.room, this.options.id, {
      name: "ice-test",
      version: this.context.version,
      runtime: this.context.runtime,
    });
    this.self = response.peerId;
    this.timings.register = this.report.elapsed();
    this.report.step("registered", `registered as ${response.peerId} in room ${response.room} (${this.context.runtime})`, {
      peerId: response.peerId,
      room: response.room,
      role: this.options.role,
      peers: response.peers.map((p) => p.peerId),
      iceServers: response.iceServers.map((s) => ({ urls: s.urls, username: s.username })),
    });
    this.setup = withTurnCa(chooseIceServers(this.options, response.iceServers), this.context.turnCa);
    this.reportIceSetup(this.setup, response);
    this.prepareNegotiation(this.setup);
    this.probeTurn(this.setup);
    this.probeNat(this.setup, response);
    const subscribed = deferred<void>();
    this.signaling.subscribe(
      (event) => this.onEvent(event, subscribed),
      (failure) => failure && this.stopped.reject(failure),
      {
        onBreak: (why, after, attempt) =>
          this.report.step("signaling-break", `signaling stream broke (${why}); resuming after event ${after}, attempt ${attempt}`, { why, resumeAfter: after, attempt }),
        onResumed: (after) => this.report.step("signaling-resumed", `signaling stream resumed after event ${after}`, { resumeAfter: after }),
      },
    );
    await this.race(subscribed.promise);
    response.peers.forEach((peer) => this.consider(peer));
  }

  private reportIceSetup(setup: IceSetup, response: RegisterResponse): void {
    const turn = setup.turn ? `, TURN ${setup.turn.url} as ${setup.turn.username || "(no user)"}` : ", no TURN";
    const stun = setup.stun ? `STUN ${setup.stun}` : "no STUN (werift will fall back to stun.l.google.com:19302)";
    this.report.step("ice-servers", `using ${stun}${turn}${setup.relayOnly ? ", relay only" : ""}`, {
      stun: setup.stun ?? null,
      turn: setup.turn ?? null,
      relayOnly: setup.relayOnly,
      offeredByServer: response.iceServers.length,
    });
  }

  /**
   * Asks the TURN server ourselves, alongside werift: its answer names the cause within
   * milliseconds. With --relay-only a refusal ends the run, since nothing else could work.
   */
  private probeTurn(setup: IceSetup): void {
    const turn = setup.turn;
    if (!turn) return;
    void probeTurn({ ...turn, password: setup.turnPassword ?? "", ...(this.context.turnCa ? { ca: this.context.turnCa } : {}) }).then((result) => {
      this.turnProbe = result;
      this.report.step("turn-probe", describeProbe(turn.url, result), { url: turn.url, transport: turn.transport, ...result });
      // "no-answer" is not final (UDP may just be lossy): werift keeps trying, and so do we.
      if (setup.relayOnly && (result.outcome === "refused" || result.outcome === "error")) {
        this.stopped.reject(diagnose({ ...this.observe("ice-failed"), phase: "ice", local: [] }));
      }
    });
  }

  /** Classifies this side's NAT alongside ICE, on sockets of its own. */
  private probeNat(setup: IceSetup, response: RegisterResponse): void {
    const targets = natTargets(setup.stun, response.iceServers, setup.turn?.url);
    if (!targets) return;
    this.natProbe = startNatProbe(targets);
    void this.natProbe.finished.then((result) => this.takeNat(result));
  }

  /** The first result taken is the one reported and sent: the summary matches the evidence. */
  private takeNat(result: NatProbeResult): void {
    if (this.nat) return;
    this.nat = result;
    this.report.step("nat-probe", describeNat(result), { ...result });
  }

  /** What the NAT probe knows by the end of the run, waiting at most NAT_PROBE_GRACE_MS for the rest. */
  private async settleNat(): Promise<void> {
    const probe = this.natProbe;
    if (!probe || this.nat) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, NAT_PROBE_GRACE_MS)));
    await Promise.race([probe.finished, grace]);
    clearTimeout(timer);
    this.takeNat(probe.now());
    probe.stop();
  }

  /** Best effort, before our bye: the other peer waits for it to print the joint verdict. */
  private async shareEvidence(failure: PeerFailure | undefined): Promise<void> {
    this.pairRows = pairTable(this.pc);
    await this.settleNat();
    if (!this.remote || this.remoteLeftRoom) return;
    const evidence = buildEvidence({
      connected: failure === undefined,
      reason: failure?.reason ?? "",
      message: failure?.message ?? "",
      phase: failure ? this.phase : "done",
      local: this.localCandidates,
      ...(this.setup?.stun ? { stun: this.setup.stun } : {}),
      ...(this.nat ? { nat: this.nat } : {}),
      ...(this.setup?.turn ? { turn: this.setup.turn } : {}),
      ...(this.turnProbe ? { turnProbe: this.turnProbe } : {}),
      pairs: this.pairRows,
    });
    this.ownEvidence = evidence;
    try {
      await this.signaling.send(this.remote, { kind: { $case: "report", value: evidence } });
      this.report.step("evidence-sent", `evidence sent to ${this.remote}`, {});
    } catch (err) {
      this.report.step("evidence-not-sent", `evidence not delivered: ${errorText(err)}`, {});
    }
  }

  /** Waits briefly for the other side's evidence, then prints one verdict for the pair. */
  private async concludeWithPeer(): Promise<void> {
    const own = this.ownEvidence;
    if (!own) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const remote = await Promise.race([
      this.remoteEvidence.promise,
      this.remoteDone.promise.then(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), REMOTE_EVIDENCE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    const theirs = remote ?? this.remoteEvidenceReport;
    const verdict = jointVerdict({ name: this.self || "this peer", report: own }, theirs ? { name: this.remote ?? "the other peer", report: theirs } : undefined);
    this.verdict = { ...verdict, notes: this.runNotes() };
    this.report.step("verdict", `verdict: ${this.verdict.text} (decided by ${this.verdict.decidedBy === "both" ? "both sides' evidence" : `${this.verdict.decidedBy}'s evidence`})`, { ...this.verdict });
  }

  /** The joint verdict as the failure's explanation; `reason` stays this side's code. */
  private verdictForError(): { verdict?: string; decidedBy?: string; remoteSaid?: string } {
    const v = this.verdict;
    if (!v) return {};
    return { verdict: v.text, decidedBy: v.decidedBy, ...(v.remoteSaid ? { remoteSaid: v.remoteSaid } : {}) };
  }

  /** Stalls a successful run had, and its timings in round trips of the selected pair. */
  private runNotes(): string[] {
    const notes: string[] = [];
    const stun = this.nat?.answers[0];
    if (this.setup?.stun && stun && stun.outcome !== "answered" && this.selected) {
      notes.push(`STUN server ${this.setup.stun} did not answer within ${((this.nat?.ms ?? 0) / 1000).toFixed(1)} s; ${this.selected.local.type} candidates carried the connection`);
    }
    // werift takes no RTT sample from a check answered only after a retransmission (Karn's rule),
    // common when the first checks die at a NAT not yet opened: the shortest ping then measures
    // the same path.
    const iceRtt = this.selected?.iceRttMs;
    const rtt = iceRtt ?? this.pingPong?.stats()?.min;
    const start = this.timings.peerFound;
    if (rtt && rtt > 0 && start !== undefined) {
      const steps: [string, number | undefined][] = [["ICE connected", this.timings.iceConnected], ["DTLS connected", this.timings.dtlsConnected], ["channel open", this.timings.channelOpen]];
      const inRtts = steps.filter(([, at]) => at !== undefined).map(([label, at]) => `${label} after ${Math.round((at! - start) / rtt)}`);
      if (inRtts.length > 0) notes.push(`in round trips of the selected pair (${rtt.toFixed(1)} ms${iceRtt ? "" : ", the shortest ping"}) from meeting the peer: ${inRtts.join(", ")}`);
    }
    return notes;
  }

  private onEvent(event: SubscribeResponse, subscribed: Deferred<void>): void {
    const payload = event.event;
    if (!payload) return;
    switch (payload.$case) {
      case "subscribed":
        this.timings.subscribed = this.report.elapsed();
        this.report.step("subscribed", `subscribed; ${payload.value.peers.length} other peer(s) in the room`, {
          peers: payload.value.peers.map((p) => p.peerId),
        });
        subscribed.resolve();
        payload.value.peers.forEach((peer) => this.consider(peer));
        return;
      case "peerJoined":
        if (!payload.value.peer) return;
        this.report.step("peer-joined", `peer ${payload.value.peer.peerId} joined (${describeClient(payload.value.peer)})`, {
          peerId: payload.value.peer.peerId,
          client: payload.value.peer.client ?? null,
        });
        this.consider(payload.value.peer);
        return;
      case "peerLeft":
        this.report.step("peer-left", `peer ${payload.value.peerId} left (${payload.value.reason})`, payload.value);
        if (payload.value.peerId === this.remote) {
          this.remoteLeftRoom = true;
          this.onRemoteGone(payload.value.reason);
        }
        return;
      case "message":
        this.onMessage(payload.value, event.sequence);
        return;
    }
  }

  /** The offerer calls the first suitable peer it sees. */
  private consider(peer: PeerInfo): void {
    if (this.options.role !== "offerer" || this.remote) return;
    if (this.options.peer && peer.peerId !== this.options.peer) return;
    this.chooseRemote(peer.peerId);
  }

  private chooseRemote(peerId: string): void {
    this.remote = peerId;
    this.timings.peerFound = this.report.elapsed();
    this.report.step("peer-chosen", `meeting peer ${peerId}`, { peerId });
    this.remoteFound.resolve(peerId);
  }

  private onMessage(message: PeerMessage, sequence: bigint): void {
    const kind = message.signal?.kind;
    if (!kind) return;
    if (kind.$case === "description" && kind.value.type === SdpType.SDP_TYPE_OFFER) {
      this.onOffer(message);
      return;
    }
    if (kind.$case === "bye" && this.awaitsOfferFrom(message.fromPeerId)) {
      this.reportBye(message.fromPeerId, kind.value.reason);
      const why = `Peer ${message.fromPeerId} gave up before sending an offer (${kind.value.reason})`;
      this.stopped.reject(new PeerFailure("connection", "peer-left", why, { hints: ["Its own report says why"] }));
      return;
    }
    if (message.fromPeerId !== this.remote) {
      this.report.step("ignored", `ignored ${kind.$case} from ${message.fromPeerId} (not our peer)`, { from: message.fromPeerId, kind: kind.$case, sequence });
      return;
    }
    switch (kind.$case) {
      case "description":
        this.onAnswer(kind.value.type, kind.value.sdp);
        return;
      case "candidate":
        this.onRemoteCandidate(kind.value.candidate, kind.value.sdpMid, kind.value.sdpMLineIndex);
        return;
      case "endOfCandidates":
        this.remoteEndOfCandidates = true;
        this.report.step("remote-end-of-candidates", `peer ${message.fromPeerId} has sent all its candidates`, {});
        void this.remoteTrickle().end().catch((err: unknown) => this.stopped.reject(asFailure(err)));
        return;
      case "bye":
        this.reportBye(message.fromPeerId, kind.value.reason);
        if (kind.value.reason === "two-offerers") {
          // The other side got our offer while offering too: both must be told the same fix.
          this.stopped.reject(new PeerFailure("usage", "two-offerers", `Peer ${message.fromPeerId} is an offerer too, and two offerers never meet`, { hints: ["Start one side with --role answerer"] }));
          return;
        }
        this.onRemoteGone(`said bye: ${kind.value.reason}`);
        return;
      case "report":
        this.remoteEvidenceReport = kind.value;
        this.report.step("evidence-received", `evidence from ${message.fromPeerId}: ${kind.value.connected ? "connected" : `${kind.value.reason}: ${kind.value.message}`}`, { evidence: kind.value });
        this.remoteEvidence.resolve(kind.value);
        return;
      case "text":
        this.report.step("text-received", `text from ${message.fromPeerId}: ${kind.value}`, { text: kind.value });
        return;
    }
  }

  /** An answerer that has no offer yet would take one from this peer. */
  private awaitsOfferFrom(peerId: string): boolean {
    return this.options.role === "answerer" && !this.remote && (!this.options.peer || this.options.peer === peerId);
  }

  private reportBye(from: string, reason: string): void {
    this.report.step("bye-received", `bye from ${from} (${reason})`, { from, reason });
  }

  private onOffer(message: PeerMessage): void {
    if (this.options.role === "offerer") {
      this.stopped.reject(
        new PeerFailure("usage", "two-offerers", `Peer ${message.fromPeerId} sent an offer, but this peer is the offerer too`, {
          hints: ["Start one side with --role answerer"],
        }),
      );
      return;
    }
    if (this.remote && message.fromPeerId !== this.remote) {
      this.report.step("ignored", `ignored an offer from ${message.fromPeerId}: already meeting ${this.remote}`, { from: message.fromPeerId });
      return;
    }
    if (this.options.peer && message.fromPeerId !== this.options.peer) {
      this.report.step("ignored", `ignored an offer from ${message.fromPeerId}: waiting for ${this.options.peer}`, { from: message.fromPeerId });
      return;
    }
    if (this.remote) return;
    this.timings.offer = this.report.elapsed();
    this.report.step("offer-received", `offer received from ${message.fromPeerId}`, { from: message.fromPeerId });
    this.pendingOffer = message;
    this.chooseRemote(message.fromPeerId);
  }

  private onAnswer(type: SdpType, sdp: string): void {
    if (this.options.role !== "offerer" || type !== SdpType.SDP_TYPE_ANSWER || !this.pc) return;
    this.timings.answer = this.report.elapsed();
    this.report.step("answer-received", `answer received from ${this.remote}`, {});
    const pc = this.pc;
    this.localOfferSet.promise
      .then(() => pc.setRemoteDescription({ type: "answer", sdp }))
      .then(() => this.afterRemoteDescription(sdp))
      .then(() => this.answerReceived.resolve())
      .catch((err: unknown) => this.stopped.reject(negotiationFailure("apply the answer", err)));
  }

  private onRemoteCandidate(candidate: string, sdpMid: string | undefined, sdpMLineIndex: number | undefined): void {
    const info = parseCandidate(candidate);
    if (info) {
      this.remoteCandidates.push(info);
      this.report.step("remote-candidate", `remote candidate ${describeCandidateLine(info)}`, info);
    } else {
      this.report.step("remote-candidate-unparsed", `remote candidate not understood: ${candidate}`, { candidate });
    }
    const init = { candidate, ...(sdpMid !== undefined ? { sdpMid } : {}), ...(sdpMLineIndex !== undefined ? { sdpMLineIndex } : {}) };
    this.remoteTrickle().add(init).catch((err: unknown) => this.report.step("remote-candidate-rejected", `werift rejected a remote candidate: ${errorText(err)}`, { candidate }));
  }

  private remoteTrickle(): RemoteCandidates {
    this.trickle ??= new RemoteCandidates((init) => this.pc!.addIceCandidate(init ?? undefined));
    return this.trickle;
  }

  private onRemoteGone(why: string): void {
    this.remoteGone = true;
    this.remoteDone.resolve();
    if (this.pingPong && this.phase === "exchange") {
      this.pingPong.peerFinished();
      return;
    }
    this.stopped.reject(this.ownCause() ?? new PeerFailure("connection", "peer-left", `Peer ${this.remote} left before the connection was up (${why})`));
  }

  /**
   * When the other side gives up during ICE, this side's evidence may name the cause (our TURN
   * server refused us, both NATs are symmetric): say that rather than "peer left".
   */
  private ownCause(): PeerFailure | undefined {
    if (this.phase !== "ice" || !this.localGatheringComplete) return undefined;
    const failure = diagnose(this.observe("ice-failed"));
    return OWN_EVIDENCE.has(failure.reason) ? failure : undefined;
  }

  /**
   * The peer connection, the offerer's data channel and its offer need nothing from the other
   * peer: they are made while it is awaited (werift's first use of each costs tens of ms), so
   * meeting it sends the offer at once, and an offer is answered by a ready connection.
   */
  private prepareNegotiation(setup: IceSetup): void {
    const pc = createPeerConnection(setup, this.report, this.onState);
    this.pc = pc;
    pc.onIceCandidate.subscribe((candidate) => pc === this.pc && this.onLocalCandidate(candidate));
    if (this.options.role === "offerer") {
      const offerSet = this.localOfferSet;
      pc.signalingStateChange.subscribe((state) => state === "have-local-offer" && offerSet.resolve());
      this.watchChannel(pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true }));
      this.heldLocalCandidates = [];
      this.preparedOffer = pc.createOffer();
      // Gathering starts now, so the first checks can start as soon as the other peer has the
      // offer: its candidates follow the offer at once instead of a gathering later. A failure of
      // the offer itself is reported once the other peer is found.
      this.preparedOffer.then((offer) => {
        if (pc !== this.pc) return;
        this.gatheringStartedAt = this.report.elapsed();
        pc.setLocalDescription(offer).catch((err: unknown) => pc === this.pc && this.stopped.reject(negotiationFailure("set the local description", err)));
      }, () => undefined);
    } else {
      pc.onDataChannel.subscribe((channel) => this.watchChannel(channel));
    }
  }

  private async negotiate(remote: string): Promise<void> {
    if (this.options.role === "offerer") await this.offer(remote);
    else await this.answer(this.pc!, remote);
    const pc = this.pc!;
    watchTransports(pc, this.report, this.onState);
    this.enterPhase("ice");
    this.watchForIceFailure(pc);
  }

  private async offer(remote: string): Promise<void> {
    const age = this.report.elapsed() - this.gatheringStartedAt;
    if (this.gatheringStartedAt > 0 && age > GATHERED_MAX_AGE_MS) await this.renewNegotiation(age);
    await this.sendDescription(remote, "offer", await this.preparedOffer!);
    // Delivered first: the other peer takes candidates only from the peer whose offer it holds.
    const held = this.heldLocalCandidates ?? [];
    this.heldLocalCandidates = undefined;
    held.forEach((candidate) => this.onLocalCandidate(candidate));
    await this.answerReceived.promise;
  }

  /** The candidates gathered while waiting are too old to trust: a new connection gathers anew. */
  private async renewNegotiation(ageMs: number): Promise<void> {
    this.report.step("candidates-renewed", `candidates gathered ${(ageMs / 1000).toFixed(0)} s ago may be stale: gathering afresh`, { ageMs });
    const stale = this.pc!;
    this.localOfferSet = deferred<void>();
    this.prepareNegotiation(this.setup!);
    await stale.close().catch(() => undefined);
  }

  private async answer(pc: RTCPeerConnection, remote: string): Promise<void> {
    const offer = this.pendingOffer!.signal!.kind as { value: { sdp: string } };
    await pc.setRemoteDescription({ type: "offer", sdp: offer.value.sdp }).catch((err: unknown) => {
      throw negotiationFailure("apply the offer", err);
    });
    await this.afterRemoteDescription(offer.value.sdp);
    const answer = await pc.createAnswer();
    await this.sendDescription(remote, "answer", answer);
    // werift's setLocalDescription resolves only once gathering is complete; the answer went out
    // first, so candidates trickle behind it instead of waiting for the slowest server. "First"
    // means delivered: setLocalDescription starts gathering and ICE synchronously (tens of ms of
    // CPU in a fresh process), and a send still queued in grpc-js would wait for all of it.
    pc.setLocalDescription(answer).catch((err: unknown) => this.stopped.reject(negotiationFailure("set the local description", err)));
  }

  private async sendDescription(remote: string, kind: "offer" | "answer", local: RTCSessionDescription): Promise<void> {
    const type = kind === "offer" ? SdpType.SDP_TYPE_OFFER : SdpType.SDP_TYPE_ANSWER;
    await this.signaling.send(remote, description(type, local.sdp));
    this.timings[kind] = this.report.elapsed();
    this.report.step(`${kind}-sent`, `${kind} sent to ${remote}`, { sdpBytes: local.sdp.length });
  }

  private async afterRemoteDescription(sdp: string): Promise<void> {
    this.reportCandidatesInSdp(sdp);
    const released = await this.remoteTrickle().descriptionSet();
    if (released > 0) this.report.step("remote-candidates-released", `applied ${released} remote candidate(s) held until the description arrived`, { count: released });
  }

  /** Stacks that do not trickle (aiortc) put their candidates in the SDP: they count as received. */
  private reportCandidatesInSdp(sdp: string): void {
    for (const line of sdp.split(/\r?\n/)) {
      if (!line.startsWith("a=candidate:")) continue;
      const info = parseCandidate(line);
      if (!info) continue;
      this.remoteCandidates.push(info);
      this.report.step("remote-candidate", `remote candidate ${describeCandidateLine(info)} (in the SDP)`, { ...info, inSdp: true });
    }
    if (/^a=end-of-candidates/m.test(sdp)) this.remoteEndOfCandidates = true;
  }

  private onLocalCandidate(candidate: LocalCandidate | undefined): void {
    if (this.heldLocalCandidates) {
      this.heldLocalCandidates.push(candidate);
      return;
    }
    const remote = this.remote!;
    if (!candidate) {
      this.localGatheringComplete = true;
      this.report.step("local-candidates-complete", `all local candidates gathered (${this.localCandidates.length})`, { count: this.localCandidates.length });
      void this.signaling.send(remote, { kind: { $case: "endOfCandidates", value: { usernameFragment: "" } } }).catch((err: unknown) => this.stopped.reject(err));
      return;
    }
    const info = parseCandidate(candidate.candidate);
    if (info && this.options.bind && !onBindAddress(info, this.options.bind)) {
      this.report.step("local-candidate-skipped", `local candidate ${describeCandidateLine(info)} skipped: not on --bind ${this.options.bind}`, info);
      return;
    }
    if (info) {
      this.localCandidates.push(info);
      this.report.step("local-candidate", `local candidate ${describeCandidateLine(info)}`, info);
    }
    const value = {
      candidate: candidate.candidate,
      ...(candidate.sdpMid !== undefined ? { sdpMid: candidate.sdpMid } : {}),
      ...(candidate.sdpMLineIndex !== undefined ? { sdpMLineIndex: candidate.sdpMLineIndex } : {}),
    };
    void this.signaling.send(remote, { kind: { $case: "candidate", value } }).catch((err: unknown) => this.stopped.reject(err));
  }

  private onTransportState(kind: "ice" | "connection" | "dtls" | "sctp", state: string): void {
    if (kind === "ice" && state === "connected" && this.timings.iceConnected === undefined) {
      this.timings.iceConnected = this.report.elapsed();
      this.selected = selectedPair(this.pc!, this.setup!);
      if (this.selected) this.report.step("selected-pair", `selected pair ${describePair(this.selected)}`, { ...this.selected });
      this.enterPhase("dtls");
    }
    if (kind === "dtls" && state === "connected" && this.timings.dtlsConnected === undefined) {
      this.timings.dtlsConnected = this.report.elapsed();
      this.enterPhase("data-channel");
    }
    if (kind === "dtls" && state === "failed") {
      this.stopped.reject(new PeerFailure("connection", "dtls-failed", "The DTLS handshake failed", { hints: ["The certificate fingerprints may not match the SDP, or the path drops large UDP packets"] }));
    }
  }

  private watchChannel(channel: RTCDataChannel): void {
    channel.stateChanged.subscribe((state) => {
      this.report.step("data-channel-state", `data channel "${channel.label}" ${state}`, { label: channel.label, state });
      if (state === "open") {
        this.timings.channelOpen = this.report.elapsed();
        this.channelOpen.resolve(channel);
      }
    });
    // werift can deliver the other side's first ping in the same tick as "open", before exchange()
    // has made the PingPong: hold such messages instead of dropping them.
    channel.onMessage.subscribe((data) => (this.pingPong ? this.pingPong.receive(data) : this.earlyMessages.push(data)));
  }

  private async exchange(channel: RTCDataChannel): Promise<void> {
    this.enterPhase("exchange");
    // Nominated pair may change until the channel is up; report the one actually carrying data.
    const selected = selectedPair(this.pc!, this.setup!);
    if (selected && describePair(selected) !== (this.selected && describePair(this.selected))) {
      this.selected = selected;
      this.report.step("selected-pair", `selected pair ${describePair(selected)}`, { ...selected });
    }
    const pingPong = new PingPong(channel, this.options.messages, {
      onRoundTrip: (seq, rttMs) => this.report.step("round-trip", `ping ${seq}/${this.options.messages} round trip ${rttMs.toFixed(2)} ms`, { seq, rttMs }),
      onUnexpected: (text) => this.report.step("unexpected-message", `unexpected data channel message: ${text.slice(0, 200)}`, {}),
    });
    this.pingPong = pingPong;
    const running = pingPong.run();
    this.earlyMessages.splice(0).forEach((data) => pingPong.receive(data));
    await running;
  }

  private watchForIceFailure(pc: RTCPeerConnection): void {
    const timer = setInterval(() => {
      if (this.stopped.settled || this.phase !== "ice") {
        clearInterval(timer);
        return;
      }
      if (iceHasFailed(pc, this.remoteEndOfCandidates)) {
        clearInterval(timer);
        this.stopped.reject(diagnose(this.observe("ice-failed")));
      }
    }, ICE_FAILURE_POLL_MS);
  }

  private startDeadline(): ReturnType<typeof setTimeout> {
    return setTimeout(() => this.stopped.reject(diagnose(this.observe("timeout"))), this.options.timeoutMs);
  }

  private observe(trigger: "timeout" | "ice-failed") {
    return {
      phase: this.phase,
      trigger,
      waitedMs: this.report.elapsed() - (this.phase === "waiting-for-peer" ? this.phaseStartedAt : this.timings.peerFound ?? 0),
      role: this.options.role,
      room: this.options.room,
      ...(this.remote ? { remotePeerId: this.remote } : {}),
      local: this.localCandidates,
      remote: this.remoteCandidates,
      pairs: this.pc ? candidatePairs(this.pc) : [],
      ...(this.setup?.stun ? { stun: this.setup.stun } : {}),
      ...(this.setup?.turn ? { turn: this.setup.turn } : {}),
      ...(this.turnProbe ? { turnProbe: this.turnProbe } : {}),
      relayOnly: this.options.relayOnly,
      localGatheringComplete: this.localGatheringComplete,
      remoteEndOfCandidates: this.remoteEndOfCandidates,
      ...(this.pingPong ? { pongs: { received: this.pingPong.pongs, expected: this.options.messages } } : {}),
      ...(this.nat ? { nat: this.nat } : {}),
    };
  }

  private enterPhase(phase: Phase): void {
    this.phase = phase;
    this.phaseStartedAt = this.report.elapsed();
  }

  /** Waits for `step`, unless the run is stopped first or `limitMs` passes (then: diagnose). */
  private race<T>(step: Promise<T>, limitMs?: number, timers?: ReturnType<typeof setTimeout>[]): Promise<T> {
    const contenders: Promise<T>[] = [step, this.stopped.promise];
    if (limitMs !== undefined) {
      contenders.push(
        new Promise<never>((_, reject) => {
          timers?.push(setTimeout(() => reject(diagnose(this.observe("timeout"))), limitMs));
        }),
      );
    }
    return Promise.race(contenders);
  }

  /** Best effort: the other peer may already have left, which is no failure of ours. */
  private async sayBye(reason: string): Promise<void> {
    if (!this.remote || this.remoteGone) return;
    try {
      await this.signaling.send(this.remote, { kind: { $case: "bye", value: { reason } } });
      this.report.step("bye-sent", `bye sent to ${this.remote}`, { peerId: this.remote, reason });
    } catch (err) {
      this.report.step("bye-not-sent", `bye not delivered: ${errorText(err)}`, { reason });
    }
  }

  private async shutDown(): Promise<void> {
    this.natProbe?.stop();
    await this.pc?.close().catch(() => undefined);
    await this.signaling.close();
  }

  private summary(failure: PeerFailure | undefined): Summary {
    const rtt = this.pingPong?.stats();
    // Ctrl-C after the channel opened interrupts a connection that worked: it still counts.
    const interruptedAfterOpen = failure?.kind === "interrupted" && this.timings.channelOpen !== undefined;
    return {
      connected: failure === undefined || interruptedAfterOpen,
      ...(failure?.kind === "interrupted" ? { interrupted: true } : {}),
      role: this.options.role,
      runtime: this.context.runtime,
      room: this.options.room,
      peerId: this.self || null,
      remotePeerId: this.remote ?? null,
      selectedPair: this.selected ?? null,
      rttMs: rtt ? { min: rtt.min, avg: rtt.avg, max: rtt.max, count: rtt.samples.length } : null,
      messages: { sent: this.pingPong?.sent ?? 0, received: this.pingPong?.received ?? 0 },
      timingsMs: { ...this.timings, total: this.report.elapsed() },
      candidates: { local: this.localCandidates, remote: this.remoteCandidates },
      nat: this.nat ?? null,
      pairs: this.pairRows,
      verdict: this.verdict ?? null,
      iceServers: { stun: this.setup?.stun ?? null, turn: this.setup?.turn ?? null, relayOnly: this.options.relayOnly },
      ...(failure ? { error: { kind: failure.kind, reason: failure.reason, message: failure.message, hints: failure.hints, ...this.verdictForError() } } : {}),
      exitCode: failure?.exitCode ?? 0,
    };
  }
}

/** werift connects to TURN over TLS with these options: a private CA is trusted there too. */
function withTurnCa(setup: IceSetup, ca: string | undefined): IceSetup {
  if (!ca || setup.turn?.transport !== "tls") return setup;
  return { ...setup, config: { ...setup.config, turnTlsOptions: { ca } } };
}

/** Host and server-reflexive candidates sit on a local address: the host's, or the srflx's base. */
function onBindAddress(candidate: CandidateInfo, bind: string): boolean {
  if (candidate.type === "host") return candidate.address === bind;
  if (candidate.type === "srflx") return candidate.relatedAddress === bind;
  return true;
}

/** werift's onIceCandidate value. */
interface LocalCandidate {
  readonly candidate: string;
  readonly sdpMid?: string;
  readonly sdpMLineIndex?: number;
}

function description(type: SdpType, sdp: string): Signal {
  return { kind: { $case: "description", value: { type, sdp } } };
}

function negotiationFailure(what: string, err: unknown): PeerFailure {
  return new PeerFailure("connection", "negotiation-failed", `Could not ${what}: ${errorText(err)}`, { cause: err });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describeClient(peer: PeerInfo): string {
  const client = peer.client;
  if (!client) return "unknown client";
  return [client.name, client.version, client.runtime].filter(Boolean).join(" ");
}

