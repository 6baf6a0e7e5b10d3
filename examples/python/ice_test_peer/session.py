"""One peer's run, from registration to bye, step for step as core/session.ts: find the other peer,
negotiate, take trickled candidates, open the data channel, measure round trips, and say what
happened or why it did not.

Where aiortc 1.4 differs from werift, and what is done about it:
- It does not trickle: setLocalDescription gathers everything and puts every candidate in the SDP.
  The description goes out complete, its candidates are reported from the SDP, and
  end_of_candidates follows it, so the other peer knows nothing more is coming.
- addIceCandidate(None) raises (it reads .sdpMid of None): end-of-candidates goes to the ICE
  transport directly, pc.sctp.transport.transport.addRemoteCandidate(None).
- Its ICE state "completed" means a pair was nominated: that is "connected" here (werift says
  "completed" when gathering is done, which means nothing).
- The answerer's channel is already open when the `datachannel` event fires, so `open` never comes.
- As the answerer it takes the DTLS server role (a=setup:passive), see _answer().
"""
import asyncio
import sys
import traceback
from typing import Optional

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from .bind import restrict_host_addresses
from .candidates import candidates_in_sdp, describe_candidate, parse_candidate, strip_prefix, without_redundant
from .contract import pb
from .diagnose import Observation, diagnose, turn_refused
from .failure import PeerFailure, as_failure
from .ice_config import IceSetup, choose_ice_servers
from .options import PeerOptions
from .peer_connection import candidate_pairs, describe_pair, dtls_transport, ice_transport, selected_pair
from .pingpong import PingPong
from .report import Report
from .signaling import SignalingChannel
from .trickle import RemoteCandidates

DATA_CHANNEL_LABEL = "ice-test"
CLIENT_NAME = "ice-test-python"
CLOSE_TIMEOUT_S = 3.0

SIGNAL_KIND_NAMES = {"end_of_candidates": "endOfCandidates"}


class PeerSession:
    def __init__(self, options: PeerOptions, signaling: SignalingChannel, report: Report, runtime: str, version: str):
        loop = asyncio.get_event_loop()
        self._options = options
        self._signaling = signaling
        self._report = report
        self._runtime = runtime
        self._version = version
        # Fails when the run must stop: timeout, interrupt, signaling lost, peer gone, ICE failed.
        self._stopped: asyncio.Future = loop.create_future()
        self._remote_found: asyncio.Future = loop.create_future()
        self._answer_received: asyncio.Future = loop.create_future()
        self._channel_open: asyncio.Future = loop.create_future()
        self._timings: dict = {}
        self._local_candidates: list = []
        self._remote_candidates: list = []
        self._phase = "waiting-for-peer"
        self._phase_started_at = 0.0
        self._self = ""
        self._remote: Optional[str] = None
        self._pending_offer_sdp: Optional[str] = None
        self._setup: Optional[IceSetup] = None
        self._pc: Optional[RTCPeerConnection] = None
        self._trickle = RemoteCandidates(self._apply_remote_candidate)
        self._ping_pong: Optional[PingPong] = None
        self._local_gathering_complete = False
        self._remote_end_of_candidates = False
        self._selected: Optional[dict] = None
        self._remote_gone = False
        self._dtls_watched = False
        self._gathering = False
        self._tasks: set = set()

    def interrupt(self) -> None:
        """Stops the run from outside (Ctrl-C, SIGTERM)."""
        self._stop(PeerFailure("interrupted", "interrupted", "Interrupted"))

    async def run(self) -> dict:
        failure: Optional[PeerFailure] = None
        timers = []
        try:
            await self._race(self._join())
            remote = await self._race(self._remote_found, self._options.wait_s)
            self._enter_phase("negotiating")
            timers.append(asyncio.get_event_loop().call_later(self._options.timeout_s, self._on_deadline))
            await self._race(self._negotiate(remote))
            channel = await self._race(self._channel_open)
            await self._race(self._exchange(channel))
            self._timings["done"] = self._report.elapsed()
            await self._say_bye("done")
        except Exception as err:  # every failure ends in the summary, none as a traceback
            failure = as_failure(err)
            if failure.kind == "internal":  # a bug, not a verdict on the network: keep the details
                traceback.print_exception(err, file=sys.stderr)
            self._report.step("error", f"FAILED: {failure.message}", {"kind": failure.kind, "reason": failure.reason, "message": failure.message})
            if failure.kind != "signaling" and failure.reason != "peer-left":
                await self._say_bye(failure.reason)
        finally:
            for timer in timers:
                timer.cancel()
            await self._shut_down()
        return self._summary(failure)

    # ── joining ────────────────────────────────────────────────────────────────────────────────

    async def _join(self) -> None:
        client = pb.ClientInfo(name=CLIENT_NAME, version=self._version, runtime=self._runtime)
        response = await self._signaling.register(self._options.room, self._options.id, client)
        self._self = response.peer_id
        self._timings["register"] = self._report.elapsed()
        self._report.step("registered", f"registered as {response.peer_id} in room {response.room} ({self._runtime})", {
            "peerId": response.peer_id,
            "room": response.room,
            "role": self._options.role,
            "peers": [p.peer_id for p in response.peers],
            "iceServers": [{"urls": list(s.urls), "username": s.username} for s in response.ice_servers],
        })
        self._setup = choose_ice_servers(self._options, response.ice_servers)
        self._report_ice_setup(self._setup, len(response.ice_servers))
        subscribed = asyncio.get_event_loop().create_future()
        self._signaling.subscribe(lambda event: self._on_event(event, subscribed), self._on_signaling_end)
        await self._race(subscribed)
        for peer in response.peers:
            self._consider(peer)

    def _report_ice_setup(self, setup: IceSetup, offered: int) -> None:
        turn = f", TURN {setup.turn['url']} as {setup.turn['username'] or '(no user)'}" if setup.turn else ", no TURN"
        stun = f"STUN {setup.stun}" if setup.stun else "no STUN"
        self._report.step("ice-servers", f"using {stun}{turn}", {
            "stun": setup.stun, "turn": setup.turn, "relayOnly": False, "offeredByServer": offered,
        })

    def _on_signaling_end(self, failure: Optional[PeerFailure]) -> None:
        if failure is not None:
            self._stop(failure)

    def _on_event(self, event, subscribed: asyncio.Future) -> None:
        which = event.WhichOneof("event")
        if which == "subscribed":
            self._timings["subscribed"] = self._report.elapsed()
            peers = event.subscribed.peers
            self._report.step("subscribed", f"subscribed; {len(peers)} other peer(s) in the room", {"peers": [p.peer_id for p in peers]})
            if not subscribed.done():
                subscribed.set_result(None)
            for peer in peers:
                self._consider(peer)
        elif which == "peer_joined":
            peer = event.peer_joined.peer
            self._report.step("peer-joined", f"peer {peer.peer_id} joined ({_describe_client(peer)})", {
                "peerId": peer.peer_id, "client": _client_fields(peer) if peer.HasField("client") else None,
            })
            self._consider(peer)
        elif which == "peer_left":
            left = event.peer_left
            self._report.step("peer-left", f"peer {left.peer_id} left ({left.reason})", {"peerId": left.peer_id, "reason": left.reason})
            if left.peer_id == self._remote:
                self._on_remote_gone(left.reason)
        elif which == "message":
            self._on_message(event.message, event.sequence)
        # Anything else is a kind added to the contract after this peer was written: skipped.

    def _consider(self, peer) -> None:
        """The offerer calls the first suitable peer it sees."""
        if self._options.role != "offerer" or self._remote:
            return
        if self._options.peer and peer.peer_id != self._options.peer:
            return
        self._choose_remote(peer.peer_id)

    def _choose_remote(self, peer_id: str) -> None:
        self._remote = peer_id
        self._timings["peerFound"] = self._report.elapsed()
        self._report.step("peer-chosen", f"meeting peer {peer_id}", {"peerId": peer_id})
        if not self._remote_found.done():
            self._remote_found.set_result(peer_id)

    # ── signals from the other peer ──────────────────────────────────────────────────────────

    def _on_message(self, message, sequence: int) -> None:
        kind = message.signal.WhichOneof("kind")
        if kind is None:
            return
        signal = message.signal
        if kind == "description" and signal.description.type == pb.SDP_TYPE_OFFER:
            self._on_offer(message.from_peer_id, signal.description.sdp)
            return
        if message.from_peer_id != self._remote:
            name = SIGNAL_KIND_NAMES.get(kind, kind)
            self._report.step("ignored", f"ignored {name} from {message.from_peer_id} (not our peer)", {
                "from": message.from_peer_id, "kind": name, "sequence": sequence,
            })
            return
        if kind == "description":
            self._on_answer(signal.description.type, signal.description.sdp)
        elif kind == "candidate":
            c = signal.candidate
            self._on_remote_candidate(
                c.candidate,
                c.sdp_mid if c.HasField("sdp_mid") else None,
                c.sdp_m_line_index if c.HasField("sdp_m_line_index") else None,
            )
        elif kind == "end_of_candidates":
            self._remote_end_of_candidates = True
            self._report.step("remote-end-of-candidates", f"peer {message.from_peer_id} has sent all its candidates", {})
            self._spawn(self._trickle.end(), self._stop_on_error)
        elif kind == "bye":
            reason = signal.bye.reason
            self._report.step("bye-received", f"bye from {message.from_peer_id} ({reason})", {"reason": reason})
            self._on_remote_gone(f"said bye: {reason}")
        elif kind == "text":
            self._report.step("text-received", f"text from {message.from_peer_id}: {signal.text}", {"text": signal.text})

    def _on_offer(self, from_peer: str, sdp: str) -> None:
        if self._options.role == "offerer":
            self._stop(PeerFailure("usage", "two-offerers", f"Peer {from_peer} sent an offer, but this peer is the offerer too",
                                   ["Start one side with --role answerer"]))
            return
        if self._remote and from_peer != self._remote:
            self._report.step("ignored", f"ignored an offer from {from_peer}: already meeting {self._remote}", {"from": from_peer})
            return
        if self._options.peer and from_peer != self._options.peer:
            self._report.step("ignored", f"ignored an offer from {from_peer}: waiting for {self._options.peer}", {"from": from_peer})
            return
        if self._remote:
            return
        self._timings["offer"] = self._report.elapsed()
        self._report.step("offer-received", f"offer received from {from_peer}", {"from": from_peer})
        self._pending_offer_sdp = sdp
        self._choose_remote(from_peer)

    def _on_answer(self, sdp_type: int, sdp: str) -> None:
        if self._options.role != "offerer" or sdp_type != pb.SDP_TYPE_ANSWER or self._pc is None:
            return
        self._timings["answer"] = self._report.elapsed()
        self._report.step("answer-received", f"answer received from {self._remote}", {})

        async def apply() -> None:
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as err:
                raise _negotiation_failure("apply the answer", err) from None
            self._watch_dtls()
            await self._after_remote_description()
            if not self._answer_received.done():
                self._answer_received.set_result(None)

        self._spawn(apply(), self._stop_on_error)

    def _on_remote_candidate(self, candidate: str, sdp_mid: Optional[str], sdp_m_line_index: Optional[int]) -> None:
        info = parse_candidate(candidate)
        if info:
            self._remote_candidates.append(info)
            self._report.step("remote-candidate", f"remote candidate {describe_candidate(info)}", info)
        else:
            self._report.step("remote-candidate-unparsed", f"remote candidate not understood: {candidate}", {"candidate": candidate})
            return
        init = {"candidate": candidate, "sdpMid": sdp_mid, "sdpMLineIndex": sdp_m_line_index}

        def rejected(err: BaseException) -> None:
            self._report.step("remote-candidate-rejected", f"aiortc rejected a remote candidate: {err}", {"candidate": candidate})

        self._spawn(self._trickle.add(init), rejected)

    async def _apply_remote_candidate(self, init: Optional[dict]) -> None:
        transport = ice_transport(self._pc)
        if init is None:
            # aiortc 1.4's pc.addIceCandidate(None) raises AttributeError: go to the ICE transport.
            await transport.addRemoteCandidate(None)
            return
        candidate = candidate_from_sdp(strip_prefix(init["candidate"]))
        # aiortc matches candidates to a transport by mid only; the contract makes both optional.
        candidate.sdpMid = init["sdpMid"] if init["sdpMid"] is not None else self._pc.sctp.mid
        candidate.sdpMLineIndex = init["sdpMLineIndex"]
        if candidate.sdpMid != self._pc.sctp.mid:
            raise ValueError(f'no m-line with mid "{candidate.sdpMid}" (the data channel\'s is "{self._pc.sctp.mid}")')
        await self._pc.addIceCandidate(candidate)

    async def _after_remote_description(self) -> None:
        released = await self._trickle.description_set()
        if released > 0:
            self._report.step("remote-candidates-released", f"applied {released} remote candidate(s) held until the description arrived", {"count": released})

    def _on_remote_gone(self, why: str) -> None:
        self._remote_gone = True
        if self._ping_pong is not None and self._phase == "exchange":
            self._ping_pong.peer_finished()
            return
        self._stop(PeerFailure("connection", "peer-left", f"Peer {self._remote} left before the connection was up ({why})"))

    # ── negotiation ──────────────────────────────────────────────────────────────────────────

    async def _negotiate(self, remote: str) -> None:
        if self._options.bind:
            restrict_host_addresses(self._options.bind)
        pc = RTCPeerConnection(configuration=self._setup.config)
        self._pc = pc
        self._watch_peer_connection(pc)
        if self._options.role == "offerer":
            await self._offer(pc, remote)
        else:
            await self._answer(pc, remote)
        if self._phase == "negotiating":  # ICE may already be through (then the phase moved on)
            self._enter_phase("ice")

    async def _offer(self, pc: RTCPeerConnection, remote: str) -> None:
        # In-band (DCEP), like the TypeScript peers: the answerer learns of it from the wire.
        self._watch_channel(pc.createDataChannel(DATA_CHANNEL_LABEL, ordered=True))
        self._watch_dtls()
        offer = await pc.createOffer()
        await self._set_local(pc, offer)
        sdp, redundant = without_redundant(pc.localDescription.sdp)
        await self._signaling.send(remote, _description(pb.SDP_TYPE_OFFER, sdp))
        self._timings["offer"] = self._report.elapsed()
        self._report.step("offer-sent", f"offer sent to {remote}", {"sdpBytes": len(sdp)})
        self._announce_local_candidates(remote, sdp, redundant)
        await self._race(self._answer_received)

    async def _answer(self, pc: RTCPeerConnection, remote: str) -> None:
        pc.on("datachannel", self._on_data_channel)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=self._pending_offer_sdp, type="offer"))
        except Exception as err:
            raise _negotiation_failure("apply the offer", err) from None
        self._watch_dtls()
        await self._after_remote_description()
        answer = await pc.createAnswer()
        # aiortc answers a=setup:active (DTLS client) and sends its ClientHello the moment its own ICE
        # is through; werift, a few ms behind, drops it and the handshake waits for OpenSSL's 1 s
        # retransmission. As the DTLS server aiortc instead queues werift's ClientHello until it
        # reads it. RFC 8842 lets the answerer pick either role.
        answer = RTCSessionDescription(sdp=answer.sdp.replace("a=setup:active", "a=setup:passive"), type="answer")
        await self._set_local(pc, answer)
        sdp, redundant = without_redundant(pc.localDescription.sdp)
        await self._signaling.send(remote, _description(pb.SDP_TYPE_ANSWER, sdp))
        self._timings["answer"] = self._report.elapsed()
        self._report.step("answer-sent", f"answer sent to {remote}", {"sdpBytes": len(sdp)})
        self._announce_local_candidates(remote, sdp, redundant)

    async def _set_local(self, pc: RTCPeerConnection, description: RTCSessionDescription) -> None:
        """Gathers every candidate, then sets the description. aioice raises from gathering when the
        TURN server refuses the allocation, so that failure shows up here."""
        self._gathering = True
        try:
            await pc.setLocalDescription(description)
        except Exception as err:
            if self._setup.turn:
                self._local_gathering_complete = True
                raise turn_refused(self._setup.turn, f": {err}") from None
            raise _negotiation_failure("set the local description", err) from None
        finally:
            self._gathering = False

    def _announce_local_candidates(self, remote: str, sdp: str, redundant: list) -> None:
        for line in redundant:
            # Still a local candidate: it proves the STUN server answered, which diagnose() relies on.
            info = parse_candidate(line)
            self._local_candidates.append(info)
            self._report.step("local-candidate-redundant", f"local candidate {describe_candidate(info)} not sent: same address as its host candidate", info)
        for line in candidates_in_sdp(sdp):
            info = parse_candidate(line)
            if info is None:
                continue
            if self._options.bind and info["type"] == "host" and info["address"] != self._options.bind:
                self._report.step("local-candidate-skipped", f"local candidate {describe_candidate(info)} skipped: not on --bind {self._options.bind}", info)
                continue
            self._local_candidates.append(info)
            self._report.step("local-candidate", f"local candidate {describe_candidate(info)}", info)
        self._local_gathering_complete = True
        count = len(self._local_candidates)
        self._report.step("local-candidates-complete", f"all local candidates gathered ({count}), sent in the description", {"count": count, "inDescription": True})
        end = pb.Signal(end_of_candidates=pb.EndOfCandidates(username_fragment=""))
        self._spawn(self._signaling.send(remote, end), self._stop_on_error)

    # ── states and the data channel ──────────────────────────────────────────────────────────

    def _watch_peer_connection(self, pc: RTCPeerConnection) -> None:
        @pc.on("signalingstatechange")
        def on_signaling_state() -> None:
            self._report.step("signaling-state", f"signaling state {pc.signalingState}", {"state": pc.signalingState})

        @pc.on("icegatheringstatechange")
        def on_gathering_state() -> None:
            self._report.step("ice-gathering-state", f"ICE gathering {pc.iceGatheringState}", {"state": pc.iceGatheringState})

        @pc.on("iceconnectionstatechange")
        def on_ice_state() -> None:
            state = pc.iceConnectionState
            note = " (aiortc: a pair is nominated)" if state == "completed" else ""
            self._report.step("ice-connection-state", f"ICE connection {state}{note}", {"state": state})
            self._on_ice_state(state)

        @pc.on("connectionstatechange")
        def on_connection_state() -> None:
            self._report.step("connection-state", f"peer connection {pc.connectionState}", {"state": pc.connectionState})

    def _watch_dtls(self) -> None:
        dtls = dtls_transport(self._pc)
        if dtls is None or self._dtls_watched:
            return
        self._dtls_watched = True

        @dtls.on("statechange")
        def on_dtls_state() -> None:
            self._report.step("dtls-state", f"DTLS {dtls.state}", {"state": dtls.state})
            self._on_dtls_state(dtls.state)

    def _on_ice_state(self, state: str) -> None:
        if state == "completed" and "iceConnected" not in self._timings:
            self._timings["iceConnected"] = self._report.elapsed()
            self._selected = selected_pair(self._pc, self._setup.turn)
            if self._selected:
                self._report.step("selected-pair", f"selected pair {describe_pair(self._selected)}", self._selected)
            if self._phase in ("negotiating", "ice"):
                self._enter_phase("dtls")
        elif state == "failed" and self._phase in ("negotiating", "ice"):
            self._stop(diagnose(self._observe("ice-failed")))

    def _on_dtls_state(self, state: str) -> None:
        if state == "connected" and "dtlsConnected" not in self._timings:
            self._timings["dtlsConnected"] = self._report.elapsed()
            if self._phase in ("negotiating", "ice", "dtls"):
                self._enter_phase("data-channel")
        elif state == "failed":
            self._stop(PeerFailure("connection", "dtls-failed", "The DTLS handshake failed",
                                   ["The certificate fingerprints may not match the SDP, or the path drops large UDP packets"]))

    def _on_data_channel(self, channel) -> None:
        self._report.step("data-channel-received", f'data channel "{channel.label}" opened by the peer', {"label": channel.label})
        self._watch_channel(channel)
        if channel.readyState == "open":  # aiortc opens it before telling us: no `open` event follows
            self._on_channel_state(channel, "open")

    def _watch_channel(self, channel) -> None:
        """Handlers go on before the channel can open. The PingPong exists from here on, so a ping that
        arrives before our side starts is answered, not dropped."""
        self._ping_pong = PingPong(
            lambda text: self._send_on(channel, text),
            self._options.messages,
            on_round_trip=lambda seq, rtt: self._report.step(
                "round-trip", f"ping {seq}/{self._options.messages} round trip {rtt:.2f} ms", {"seq": seq, "rttMs": rtt}),
            on_unexpected=lambda text: self._report.step("unexpected-message", f"unexpected data channel message: {text[:200]}", {}),
        )
        channel.on("open", lambda: self._on_channel_state(channel, "open"))
        channel.on("close", lambda: self._on_channel_state(channel, "closed"))
        channel.on("message", self._ping_pong.receive)

    def _on_channel_state(self, channel, state: str) -> None:
        self._report.step("data-channel-state", f'data channel "{channel.label}" {state}', {"label": channel.label, "state": state})
        if state == "open" and not self._channel_open.done():
            self._timings["channelOpen"] = self._report.elapsed()
            self._channel_open.set_result(channel)

    def _send_on(self, channel, text: str) -> None:
        if channel.readyState != "open":
            self._report.step("send-dropped", f"data channel is {channel.readyState}: not sent: {text}", {"state": channel.readyState})
            return
        channel.send(text)

    async def _exchange(self, channel) -> None:
        self._enter_phase("exchange")
        # The nominated pair may change until the channel is up; report the one carrying data.
        selected = selected_pair(self._pc, self._setup.turn)
        if selected and (self._selected is None or describe_pair(selected) != describe_pair(self._selected)):
            self._selected = selected
            self._report.step("selected-pair", f"selected pair {describe_pair(selected)}", selected)
        await self._ping_pong.run()

    # ── stopping ─────────────────────────────────────────────────────────────────────────────

    def _on_deadline(self) -> None:
        self._stop(self._timeout_failure())

    def _timeout_failure(self) -> PeerFailure:
        # aioice gathers before the description exists, and an unreachable TURN server holds it for
        # 31.5 s (STUN gives up after 5 s): a deadline then says nothing about the other peer.
        if self._gathering and self._setup.turn:
            seconds = (self._report.elapsed() - self._timings.get("peerFound", 0)) / 1000
            return turn_refused(self._setup.turn, f" within {seconds:.1f} s (still gathering when the time was up)")
        return diagnose(self._observe("timeout"))

    def _observe(self, trigger: str) -> Observation:
        phase = self._phase
        if trigger == "ice-failed" and phase == "negotiating":
            phase = "ice"
        since = self._phase_started_at if self._phase == "waiting-for-peer" else self._timings.get("peerFound", 0)
        return Observation(
            phase=phase,
            trigger=trigger,
            waited_ms=self._report.elapsed() - since,
            room=self._options.room,
            remote_peer_id=self._remote,
            local=self._local_candidates,
            remote=self._remote_candidates,
            pairs=candidate_pairs(self._pc),
            stun=self._setup.stun if self._setup else None,
            turn=self._setup.turn if self._setup else None,
            local_gathering_complete=self._local_gathering_complete,
            remote_end_of_candidates=self._remote_end_of_candidates,
            pongs={"received": self._ping_pong.pongs, "expected": self._options.messages} if self._ping_pong else None,
        )

    def _enter_phase(self, phase: str) -> None:
        self._phase = phase
        self._phase_started_at = self._report.elapsed()

    def _stop(self, failure: PeerFailure) -> None:
        if not self._stopped.done():
            self._stopped.set_exception(failure)

    def _stop_on_error(self, err: BaseException) -> None:
        self._stop(as_failure(err))

    def _spawn(self, coroutine, on_error) -> None:
        """Runs `coroutine` on its own; its failure goes to `on_error` instead of being lost."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                on_error(t.exception())

        task.add_done_callback(done)

    async def _race(self, awaitable, limit_s: Optional[float] = None):
        """Waits for `awaitable`, unless the run is stopped first or `limit_s` passes (then: diagnose)."""
        step = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({step, self._stopped}, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        if step in done:
            return step.result()
        step.cancel()
        if self._stopped.done():
            raise self._stopped.exception()
        raise self._timeout_failure()

    async def _say_bye(self, reason: str) -> None:
        """Best effort: the other peer may already have left, which is no failure of ours."""
        if not self._remote or self._remote_gone:
            return
        try:
            await self._signaling.send(self._remote, pb.Signal(bye=pb.Bye(reason=reason)))
            self._report.step("bye-sent", f"bye sent to {self._remote}", {"peerId": self._remote, "reason": reason})
        except PeerFailure as failure:
            self._report.step("bye-not-sent", f"bye not delivered: {failure.message}", {"reason": reason})

    async def _shut_down(self) -> None:
        if self._stopped.done():
            self._stopped.exception()  # retrieved: no "exception was never retrieved" on exit
        for task in list(self._tasks):
            task.cancel()
        if self._pc is not None:
            try:
                await asyncio.wait_for(self._pc.close(), CLOSE_TIMEOUT_S)
            except Exception:  # closing is best effort; the run's result is already known
                pass
        await self._signaling.close()

    def _summary(self, failure: Optional[PeerFailure]) -> dict:
        rtt = self._ping_pong.stats() if self._ping_pong else None
        summary = {
            "connected": failure is None,
            "role": self._options.role,
            "runtime": self._runtime,
            "room": self._options.room,
            "peerId": self._self or None,
            "remotePeerId": self._remote,
            "selectedPair": self._selected,
            "rttMs": rtt,
            "messages": {"sent": self._ping_pong.sent if self._ping_pong else 0, "received": self._ping_pong.received if self._ping_pong else 0},
            "timingsMs": {**self._timings, "total": self._report.elapsed()},
            "candidates": {"local": self._local_candidates, "remote": self._remote_candidates},
            "iceServers": {
                "stun": self._setup.stun if self._setup else None,
                "turn": self._setup.turn if self._setup else None,
                "relayOnly": False,
            },
        }
        if failure is not None:
            summary["error"] = failure.as_dict()
        summary["exitCode"] = failure.exit_code if failure else 0
        return summary


def _description(sdp_type: int, sdp: str):
    return pb.Signal(description=pb.SessionDescription(type=sdp_type, sdp=sdp))


def _negotiation_failure(what: str, err: BaseException) -> PeerFailure:
    return PeerFailure("connection", "negotiation-failed", f"Could not {what}: {err or type(err).__name__}")


def _client_fields(peer) -> dict:
    return {"name": peer.client.name, "version": peer.client.version, "runtime": peer.client.runtime}


def _describe_client(peer) -> str:
    if not peer.HasField("client"):
        return "unknown client"
    return " ".join(part for part in (peer.client.name, peer.client.version, peer.client.runtime) if part)
