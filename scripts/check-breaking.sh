#!/usr/bin/env bash
# Fails when proto/ changed incompatibly since the previous commit of main (buf's WIRE_JSON rules:
# field numbers, types, names in JSON). Generated clients in other languages depend on this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --verify --quiet HEAD~1 >/dev/null; then
  echo "no previous commit to compare with (first commit or shallow clone): skipped"
  exit 0
fi
if ! git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then
  echo "the previous commit has no contract yet: skipped"
  exit 0
fi
npx --no buf breaking --against ".git#ref=HEAD~1"
