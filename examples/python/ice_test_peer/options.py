"""The command line, the same as the TypeScript peer's (core/options.ts).

It accepts the old Go tool's flags as its README wrote them (`-role answerer -signaling-addr
http://host:443 -with-turn=false`) as well as GNU style (`--role answerer --with-turn`). argparse
knows neither single-dash long flags nor `--flag=false`, so argv is normalised first.
"""
import argparse
import re
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence
from urllib.parse import urlsplit

from .failure import usage_error
from .ice_config import aiortc_can_use

DEFAULT_SIGNALING_ADDR = "https://localhost:443"
DEFAULT_ROOM = "ice-test"

USAGE = f"""Usage: peer.py --role offerer|answerer [options]

Meets another peer through an ice-test signaling server, opens a WebRTC data channel, exchanges
ping/pong messages and reports every step: candidates, states, the selected pair and round trips.
The Python peer (aiortc); it meets the Node and Deno peers as well as another Python one.

  --role offerer|answerer   which side to play (required); either side may start first
  --signaling-addr URL      https://host:port (TLS) or http://host:port (plaintext)
                            [default: {DEFAULT_SIGNALING_ADDR}]
  --room NAME               meet peers in this room [default: {DEFAULT_ROOM}]
  --id ID                   ask for this peer id (default: the server chooses)
  --peer ID                 meet only this peer id
  --stun URL                STUN server (repeatable; aiortc uses the first); replaces the server's
  --turn URL                TURN server, e.g. turn:host:3478?transport=tcp
  --turn-user NAME          TURN user name
  --turn-password PASS      TURN password [env: TURN_PASSWORD]
  --with-turn[=false]       use TURN (--turn, or the TURN servers the signaling server hands out)
  --ca FILE                 trust this CA/certificate (PEM) for a self-signed signaling server
  --tls-server-name NAME    expect this name in the server's certificate
  --messages N              ping/pong round trips to measure [default: 5]
  --timeout DURATION        limit for connecting and exchanging, e.g. 30s, 2m [default: 30s]
  --wait DURATION           limit for the other peer to show up [default: no limit]
  --bind ADDRESS            gather host candidates on this local address only
  --json                    JSON lines instead of text, ending with a summary object
  --help, --version

Go-style flags work too: -role answerer -signaling-addr http://host:443 -with-turn=false
Exit codes: 0 connected, 2 usage, 3 signaling failed, 4 connection failed or timed out, 130 interrupted."""

VALUE_FLAGS = [
    "role", "signaling-addr", "room", "id", "peer", "stun", "turn", "turn-user", "turn-password",
    "ca", "tls-server-name", "messages", "timeout", "wait", "bind",
]
BOOLEAN_FLAGS = ["with-turn", "json", "help", "version"]
TRUE_WORDS = {"true", "1", "yes"}
FALSE_WORDS = {"false", "0", "no"}


@dataclass(frozen=True)
class SignalingTarget:
    url: str
    """The URL as given, for messages."""
    address: str
    """host:port, as grpc wants it."""
    host: str
    tls: bool


@dataclass(frozen=True)
class PeerOptions:
    role: str
    signaling: SignalingTarget
    room: str = DEFAULT_ROOM
    id: Optional[str] = None
    peer: Optional[str] = None
    stun: List[str] = field(default_factory=list)
    turn: Optional[str] = None
    turn_user: Optional[str] = None
    turn_password: Optional[str] = None
    with_turn: Optional[bool] = None
    """None: use TURN only if --turn was given."""
    ca_file: Optional[str] = None
    tls_server_name: Optional[str] = None
    messages: int = 5
    timeout_s: float = 30.0
    wait_s: Optional[float] = None
    bind: Optional[str] = None
    json: bool = False
    relay_only: bool = False
    """Not offered by this peer (aiortc 1.4 has no iceTransportPolicy); kept for the summary."""


@dataclass(frozen=True)
class Command:
    kind: str  # "run", "help" or "version"
    options: Optional[PeerOptions] = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit(2) itself
        raise usage_error(f"{message[0].upper()}{message[1:]} (see --help)")


class _Once(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest) is not None:
            raise usage_error(f"{option_string} was given more than once")
        if values == "":
            raise usage_error(f"{option_string} needs a value")
        setattr(namespace, self.dest, values)


def _parser() -> _Parser:
    parser = _Parser(prog="peer.py", add_help=False, allow_abbrev=False)
    for name in VALUE_FLAGS:
        if name == "stun":
            parser.add_argument("--stun", action="append", default=[])
        else:
            parser.add_argument(f"--{name}", action=_Once, default=None)
    for name in BOOLEAN_FLAGS:
        parser.add_argument(f"--{name}", dest=name.replace("-", "_"), action="store_true", default=None)
        parser.add_argument(f"--no-{name}", dest=name.replace("-", "_"), action="store_false")
    parser.add_argument("-h", dest="help", action="store_true")
    return parser


def normalise(argv: Sequence[str]) -> List[str]:
    """Go style to GNU style: `-role x` → `--role x`, `--json=false` → `--no-json`."""
    out: List[str] = []
    for arg in argv:
        if re.match(r"^-[a-z][a-z-]+(=|$)", arg):
            arg = "-" + arg
        match = re.match(r"^--([a-z-]+)=(.*)$", arg, re.S)
        if match and match.group(1) in BOOLEAN_FLAGS:
            name, value = match.group(1), match.group(2).lower()
            if value in TRUE_WORDS:
                arg = f"--{name}"
            elif value in FALSE_WORDS:
                arg = f"--no-{name}"
            else:
                raise usage_error(f'--{name} takes true or false, not "{match.group(2)}"')
        out.append(arg)
    return out


def parse_command(argv: Sequence[str], env: Callable[[str], Optional[str]]) -> Command:
    args, rest = _parser().parse_known_args(normalise(argv))
    if rest:
        unknown = rest[0]
        if unknown.startswith("-"):
            raise usage_error(f"Unknown flag {unknown.split('=')[0]} (see --help)")
        raise usage_error(f'Unexpected argument "{unknown}" (see --help)')
    if args.help:
        return Command("help")
    if args.version:
        return Command("version")
    return Command("run", _to_options(args, env))


def _to_options(args: argparse.Namespace, env: Callable[[str], Optional[str]]) -> PeerOptions:
    turn = _optional(args.turn, parse_turn_url)
    with_turn = args.with_turn if args.with_turn is not None else (True if turn else None)
    options = PeerOptions(
        role=_parse_role(args.role),
        signaling=parse_signaling_addr(args.signaling_addr or DEFAULT_SIGNALING_ADDR),
        room=_parse_name("room", args.room or DEFAULT_ROOM),
        id=_optional(args.id, lambda v: _parse_name("id", v)),
        peer=_optional(args.peer, lambda v: _parse_name("peer", v)),
        stun=[_parse_stun_url(url) for url in args.stun],
        turn=turn,
        turn_user=args.turn_user,
        turn_password=args.turn_password if args.turn_password is not None else env("TURN_PASSWORD"),
        with_turn=with_turn,
        ca_file=args.ca,
        tls_server_name=args.tls_server_name,
        messages=_parse_count(args.messages or "5"),
        timeout_s=parse_duration("timeout", args.timeout or "30s"),
        wait_s=_optional(args.wait, lambda v: parse_duration("wait", v)),
        bind=args.bind,
        json=bool(args.json),
    )
    if options.turn and options.turn_user is None:
        raise usage_error("--turn needs --turn-user and --turn-password (or TURN_PASSWORD)")
    return options


def _optional(value, convert):
    return None if value is None else convert(value)


def _parse_role(value: Optional[str]) -> str:
    if value in ("offerer", "answerer"):
        return value
    if value is None:
        raise usage_error("--role is required: offerer or answerer")
    raise usage_error(f'--role must be offerer or answerer, not "{value}"')


def parse_signaling_addr(value: str) -> SignalingTarget:
    url = urlsplit(value if "://" in value else f"https://{value}")
    if url.scheme not in ("https", "http"):
        raise usage_error(f"--signaling-addr must start with https:// (TLS) or http:// (plaintext), not {url.scheme}://")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host, port = None, None
    if not host:
        raise usage_error(f'--signaling-addr "{value}" is not a URL like https://host:443')
    tls = url.scheme == "https"
    port = port or (443 if tls else 80)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return SignalingTarget(url=value, address=address, host=host, tls=tls)


NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _parse_name(flag: str, value: str) -> str:
    if NAME.match(value):
        return value
    raise usage_error(f"--{flag} \"{value}\" must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")


def _parse_stun_url(value: str) -> str:
    if re.match(r"^stuns?:\S+$", value, re.I):
        return _usable_by_aiortc("--stun", value)
    raise usage_error(f'--stun "{value}" is not a STUN URL like stun:host:3478')


def parse_turn_url(value: str) -> str:
    if re.match(r"^turns?:[^\s?]+(\?transport=(udp|tcp))?$", value, re.I):
        return _usable_by_aiortc("--turn", value)
    raise usage_error(f'--turn "{value}" is not a TURN URL like turn:host:3478 or turn:host:3478?transport=tcp')


def _usable_by_aiortc(flag: str, url: str) -> str:
    if aiortc_can_use(url):
        return url
    raise usage_error(f'{flag} "{url}" cannot be used by aiortc 1.4 (it takes no IPv6 address in a STUN/TURN URL): use a host name')


def _parse_count(value: str) -> int:
    if re.match(r"^\d+$", value) and int(value) <= 10_000:
        return int(value)
    raise usage_error(f'--messages must be a whole number from 0 to 10000, not "{value}"')


UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(flag: str, value: str) -> float:
    """Go-style durations ("1m30s", "500ms") or plain seconds ("30"), in seconds."""
    if re.match(r"^\d+(\.\d+)?$", value):
        total = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
        if not parts or "".join(n + unit for n, unit in parts) != value:
            raise usage_error(f'--{flag} "{value}" is not a duration like 30s, 2m or 1m30s')
        total = sum(float(n) * UNITS_S[unit] for n, unit in parts)
    if total <= 0:
        raise usage_error(f"--{flag} must be longer than zero")
    return total
