#!/usr/bin/python3
"""ice-test's Python peer: can these two machines open a WebRTC connection, and if not, why.

    /usr/bin/python3 examples/python/peer.py --role answerer --signaling-addr http://127.0.0.1:8443

Meets the Node and Deno peers (and another Python one) through the same signaling server. See
examples/python/README.md; needs Debian's python3-aiortc and python3-grpcio.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    from ice_test_peer.main import main
except ImportError as err:  # a missing dependency is a usage problem, not a traceback
    sys.stderr.write(
        f"ice-test: cannot load the Python peer: {err}\n"
        "  hint: apt-get install python3-aiortc python3-grpcio, and run it with /usr/bin/python3\n"
    )
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ.get))
