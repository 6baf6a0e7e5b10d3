"""Rescues the one DTLS record that OpenSSL drops in every connection with werift 0.24.4.

werift builds its Finished message in epoch 1 with the sequence number it had reached in epoch 0
(6 as DTLS client, 8 as server), then resets its counter: its application data in epoch 1 counts
1, 2, 3… again and reaches the Finished's number. OpenSSL's replay window (which aiortc cannot
turn off) drops that record silently. It carries an SCTP chunk, so werift resends it after its
1 s retransmission timeout: measured, one ping in every Python↔werift run took ~1003 ms instead
of ~2 ms. werift↔werift never notices, since werift keeps no replay window.

The fix belongs in werift (reset the counter before building Finished). Here, when OpenSSL
refuses an application-data record of epoch 1 with a small sequence number that it never
delivered, the record is decrypted with the session's keys; the AES-GCM tag proves it authentic,
and the sequence number is remembered so that a real replay is still dropped.
"""
import hashlib
import hmac
from typing import Optional, Set, Tuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from OpenSSL import SSL

APPLICATION_DATA = 23
HEADER = 13
EXPLICIT_NONCE = 8
TAG = 16
# werift's collision is at 6 or 8; records that late in a window are never refused otherwise.
RESCUE_BELOW = 64
SUITES = {"AES128-GCM-SHA256": (16, hashlib.sha256), "AES256-GCM-SHA384": (32, hashlib.sha384)}


def tolerate_werift_replay(dtls) -> None:
    """Wraps aiortc's RTCDtlsTransport's OpenSSL connection; call before the handshake starts."""
    if not isinstance(dtls.ssl, _ReplayTolerantConnection):
        dtls.ssl = _ReplayTolerantConnection(dtls.ssl, dtls)


class _ReplayTolerantConnection:
    def __init__(self, connection: SSL.Connection, dtls):
        self._connection = connection
        self._dtls = dtls
        self._datagram = b""
        self._delivered: Set[Tuple[int, int]] = set()
        self._keys: Optional[Tuple[bytes, bytes]] = None
        self.rescued = 0

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def bio_write(self, data: bytes) -> int:
        self._datagram = data
        return self._connection.bio_write(data)

    def recv(self, size: int) -> bytes:
        record = _application_record(self._datagram)
        try:
            data = self._connection.recv(size)
        except SSL.WantReadError:
            data = self._rescue(record)
            if data is None:
                raise
            self.rescued += 1
        if record is not None and record[1] < RESCUE_BELOW:
            self._delivered.add(record[:2])
        return data

    def _rescue(self, record) -> Optional[bytes]:
        if record is None or record[1] >= RESCUE_BELOW or record[:2] in self._delivered:
            return None
        epoch, seq, version, fragment = record
        key, salt = self._remote_write_key()
        if key is None or len(fragment) < EXPLICIT_NONCE + TAG:
            return None
        sequence = epoch.to_bytes(2, "big") + seq.to_bytes(6, "big")
        length = len(fragment) - EXPLICIT_NONCE - TAG
        aad = sequence + bytes([APPLICATION_DATA]) + version + length.to_bytes(2, "big")
        try:
            return AESGCM(key).decrypt(salt + fragment[:EXPLICIT_NONCE], fragment[EXPLICIT_NONCE:], aad)
        except Exception:  # not authentic (or not ours): let OpenSSL's verdict stand
            return None

    def _remote_write_key(self):
        if self._keys is None:
            suite = next((v for k, v in SUITES.items() if (self._connection.get_cipher_name() or "").endswith(k)), None)
            if suite is None:
                self._keys = (None, None)
                return self._keys
            key_length, hash_function = suite
            seed = self._connection.server_random() + self._connection.client_random()
            block = _prf(hash_function, self._connection.master_key(), b"key expansion", seed, 2 * key_length + 8)
            client_key, server_key = block[:key_length], block[key_length:2 * key_length]
            client_salt, server_salt = block[2 * key_length:2 * key_length + 4], block[2 * key_length + 4:]
            # We read what the other side wrote: the server's keys when we are the client.
            self._keys = (server_key, server_salt) if self._dtls._role == "client" else (client_key, client_salt)
        return self._keys


def _application_record(datagram: bytes):
    """(epoch, seq, version, fragment) when the datagram is exactly one epoch-1+ application-data record."""
    if len(datagram) < HEADER or datagram[0] != APPLICATION_DATA:
        return None
    length = int.from_bytes(datagram[11:13], "big")
    if HEADER + length != len(datagram):
        return None
    epoch = int.from_bytes(datagram[3:5], "big")
    if epoch == 0:
        return None
    return epoch, int.from_bytes(datagram[5:11], "big"), datagram[1:3], datagram[HEADER:]


def _prf(hash_function, secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """The TLS 1.2 PRF (RFC 5246, section 5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < size:
        a = hmac.new(secret, a, hash_function).digest()
        out += hmac.new(secret, a + seed, hash_function).digest()
    return out[:size]
