"""The peer's side of the signaling contract (as core/signaling.ts): register, one Subscribe stream,
ordered sends, leave. Every gRPC failure becomes one PeerFailure("signaling") with a sentence a
person can act on."""
import asyncio
import re
from typing import Awaitable, Callable, Optional

import grpc

from .contract import pb, rpc
from .failure import PeerFailure
from .options import SignalingTarget

CALL_TIMEOUT_S = 10.0
LEAVE_TIMEOUT_S = 2.0


class SignalingChannel:
    def __init__(self, target: SignalingTarget, ca_pem: Optional[bytes] = None, tls_server_name: Optional[str] = None):
        self._target = target
        options = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000)]
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        if target.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
            self._channel = grpc.aio.secure_channel(target.address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target.address, options=options)
        self._stub = rpc.SignalingServiceStub(self._channel)
        self._token = ""
        self._stream = None
        self._reader: Optional[asyncio.Task] = None
        self._closing = False
        # Sends go out one at a time so the recipient sees them in the order we made them.
        self._last_send: Optional[asyncio.Future] = None

    async def register(self, room: str, peer_id: Optional[str], client: "pb.ClientInfo"):
        request = pb.RegisterRequest(room=room, peer_id=peer_id or "", client=client)
        response = await self._unary("Register", self._stub.Register(request, timeout=CALL_TIMEOUT_S))
        self._token = response.session_token
        return response

    def subscribe(self, on_event: Callable[["pb.SubscribeResponse"], None], on_end: Callable[[Optional[PeerFailure]], None]) -> None:
        """Opens the stream. `on_event` sees every event in order; `on_end` is told once, with a failure
        unless the stream was closed by us."""
        self._stream = self._stub.Subscribe(pb.SubscribeRequest(session_token=self._token))

        async def read() -> None:
            failure: Optional[PeerFailure] = None
            try:
                async for event in self._stream:
                    on_event(event)
                if not self._closing:
                    failure = PeerFailure("signaling", "signaling-closed", f"Signaling server {self._target.url} closed the Subscribe stream")
            except grpc.aio.AioRpcError as err:
                if not (self._closing and err.code() == grpc.StatusCode.CANCELLED):
                    failure = self._failure("Subscribe", err)
            except asyncio.CancelledError:
                pass
            on_end(failure)

        self._reader = asyncio.ensure_future(read())

    def send(self, to_peer_id: str, signal: "pb.Signal") -> Awaitable[None]:
        """Queues one signal; the returned future settles when the server has accepted it."""
        previous = self._last_send

        async def send_after_previous() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            request = pb.SendMessageRequest(session_token=self._token, to_peer_id=to_peer_id, signal=signal)
            await self._unary("SendMessage", self._stub.SendMessage(request, timeout=CALL_TIMEOUT_S))

        sent = asyncio.ensure_future(send_after_previous())
        self._last_send = sent
        return sent

    async def close(self) -> None:
        """Leaves the room and closes everything; never raises, since it runs on the way out."""
        self._closing = True
        if self._last_send is not None:
            await asyncio.gather(self._last_send, return_exceptions=True)
        if self._stream is not None:
            self._stream.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._token:
            try:
                await self._stub.Leave(pb.LeaveRequest(session_token=self._token), timeout=LEAVE_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                pass
        await self._channel.close()

    async def _unary(self, method: str, call):
        try:
            return await call
        except grpc.aio.AioRpcError as err:
            raise self._failure(method, err) from None

    def _failure(self, method: str, err: grpc.aio.AioRpcError) -> PeerFailure:
        code = err.code()
        details = err.details() or code.name
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return PeerFailure("signaling", "signaling-unreachable", f"Cannot reach signaling server {self._target.url}: {details}", self._hints(details))
        reason = "signaling-refused" if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) else "signaling-error"
        return PeerFailure("signaling", reason, f"{method} failed at signaling server {self._target.url}: {details} ({code.name})")

    def _hints(self, details: str):
        if re.search(r"wrong version number", details, re.I):
            return [f"The server at {self._target.address} does not speak TLS: use http:// (it was started with --insecure)"]
        if re.search(r"certificate|self.signed|SSL|TLS|handshake", details, re.I):
            return ["The server's TLS certificate is not trusted: pass its certificate with --ca FILE, or use http:// for a plaintext server"]
        if self._target.tls:
            return [f"Check that the server runs at {self._target.address} with TLS (use http:// if it was started with --insecure)"]
        return [f"Check that the server runs at {self._target.address} without TLS (use https:// if it has a certificate)"]
