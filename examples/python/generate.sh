#!/usr/bin/env bash
# Generates the Python code for the signaling contract into examples/python/gen/ (or into the
# directory given as $1, which is how test/python-peer.test.ts checks that gen/ is fresh).
#
# Plain protoc with Debian's gRPC plugin, not buf: a Python user then needs nothing from npm.
# (buf works too with local plugins only; docs/contract.md shows that template.)
#   apt-get install protobuf-compiler protobuf-compiler-grpc
# The output is only valid with the protobuf runtime of the same generation (python3-protobuf
# 3.21/4.21 from Debian 12, which python3-grpcio pulls in).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/gen}"
plugin="${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || echo /usr/bin/grpc_python_plugin)}"

command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
[ -x "$plugin" ] || { echo "grpc_python_plugin not found: apt-get install protobuf-compiler-grpc" >&2; exit 1; }

# Clean first, like buf's `clean: true`: a message or file removed from proto/ disappears here too.
rm -rf "$out"
mkdir -p "$out"
protoc \
  -I "$root/proto" \
  --python_out="$out" \
  --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  "$root/proto/icetest/signaling/v1/signaling.proto"
