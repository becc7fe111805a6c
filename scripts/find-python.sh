#!/usr/bin/env bash
# Prints the path of a Python interpreter Tapioca runs on (requires-python in
# pyproject.toml: 3.11, 3.12 or 3.13), for `uv sync --python`, and exits 1 with a message
# naming what to do when there is none. In order: $PYTHON when set (uv checks it against
# requires-python); what `uv python find` picks for the project (the .venv's own
# interpreter when it has one that fits); else the first of python3.13, python3.12 and
# python3.11 on PATH that runs (a shim of a version manager may be there but not work).
# uv is $UV, else the uv on PATH.
set -uo pipefail

if [ -n "${PYTHON:-}" ]; then
  echo "$PYTHON"
  exit 0
fi
if found=$("${UV:-uv}" python find 2>/dev/null) && [ -n "$found" ]; then
  echo "$found"
  exit 0
fi
for name in python3.13 python3.12 python3.11; do
  path=$(command -v "$name") || continue
  if "$path" -c 'import sys; print(sys.executable)' 2>/dev/null; then
    exit 0
  fi
done
printf '%s\n' >&2 \
  "No Python 3.11, 3.12 or 3.13 found: \`uv python find\` found none that fits, and none of" \
  "python3.13, python3.12, python3.11 on PATH runs. Install one (e.g. \`apt-get install" \
  "python3.11\`, or \`uv python install 3.13\`), or name one: make run PYTHON=/path/to/python3.12"
exit 1
