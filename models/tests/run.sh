#!/usr/bin/env bash
# Python-side model tests (PyTorch from the committed checkpoints). Debian's python3-torch etc.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 -m pytest -q tests "$@"
