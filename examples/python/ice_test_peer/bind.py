"""--bind: gather host candidates on one local address only.

aioice enumerates every interface and skips 127.0.0.1 and ::1 on purpose, and aiortc 1.4 has no
setting for either, so the module-level function it calls is replaced before gathering. This is
also what makes loopback-only tests possible.
"""
import aioice.ice


def restrict_host_addresses(address: str) -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]
