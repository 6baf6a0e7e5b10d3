"""The peer program: argv in, an exit code out (as core/run.ts plus client-node/main.ts)."""
import asyncio
import platform
import re
import signal
import sys
import traceback
from typing import List, Optional

import aiortc

from .failure import EXIT_CODES, PeerFailure, as_failure
from .options import USAGE, PeerOptions, parse_command
from .report import Report, to_json
from .session import PeerSession
from .summary import describe_summary
from .version import VERSION

RUNTIME = f"python {platform.python_version()} aiortc {aiortc.__version__}"


def main(argv: List[str], env) -> int:
    as_json = any(re.match(r"^--?json(=true)?$", arg) for arg in argv)
    try:
        command = parse_command(argv, env)
        if command.kind == "help":
            _out(USAGE)
            return EXIT_CODES["ok"]
        if command.kind == "version":
            _out(f"ice-test {VERSION} ({RUNTIME})")
            return EXIT_CODES["ok"]
        ca = _read_ca(command.options.ca_file) if command.options.ca_file else None
        return asyncio.run(_run_session(command.options, ca))
    except KeyboardInterrupt:  # before the loop could install its own handler
        return EXIT_CODES["interrupted"]
    except Exception as err:
        failure = as_failure(err)
        if failure.kind == "internal":  # a bug: keep the details for whoever reports it
            traceback.print_exception(err, file=sys.stderr)
        return _report_early_failure(failure, as_json)


async def _run_session(options: PeerOptions, ca: Optional[bytes]) -> int:
    from .signaling import SignalingChannel  # grpc.aio wants a running loop

    report = Report(_out, options.json)
    signaling = SignalingChannel(options.signaling, ca, options.tls_server_name)
    session = PeerSession(options, signaling, report, RUNTIME, VERSION)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, session.interrupt)
    try:
        summary = await session.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    report.block("summary", describe_summary(summary), summary)
    if "error" in summary:
        _err(f"ice-test: {summary['error']['message']}")
    return summary["exitCode"]


def _read_ca(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise PeerFailure("usage", "usage", f"Cannot read --ca {path}: {err.strerror}") from None


def _report_early_failure(failure: PeerFailure, as_json: bool) -> int:
    if as_json:
        _out(to_json({"t": 0, "event": "summary", "connected": False, "error": failure.as_dict(), "exitCode": failure.exit_code}))
    _err(f"ice-test: {failure.message}")
    for hint in failure.hints:
        _err(f"  hint: {hint}")
    if failure.kind == "usage":
        _err("Run with --help for the list of flags.")
    return failure.exit_code


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
