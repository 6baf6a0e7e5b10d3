"""The generated signaling contract, importable from anywhere.

protoc names modules after the proto's path (icetest/signaling/v1/signaling.proto), and the gRPC
stub imports its sibling absolutely (`from icetest.signaling.v1 import signaling_pb2`), so the
directory holding `icetest/` must be on sys.path. ICE_TEST_PY_GEN points at another copy (for
instance one generated into a temporary directory); the default is examples/python/gen.
"""
import os
import sys
from pathlib import Path

GEN_DIR = Path(os.environ.get("ICE_TEST_PY_GEN") or Path(__file__).resolve().parent.parent / "gen")
if str(GEN_DIR) not in sys.path:
    sys.path.insert(0, str(GEN_DIR))

from icetest.signaling.v1 import signaling_pb2 as pb  # noqa: E402
from icetest.signaling.v1 import signaling_pb2_grpc as rpc  # noqa: E402

__all__ = ["pb", "rpc", "GEN_DIR"]
