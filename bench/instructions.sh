#!/usr/bin/env bash
# Instructions the server spends on one request, counted by callgrind (repeatable whatever else
# the machine does, unlike timings): the CLI serves APP under valgrind while one keep-alive
# connection sends 1,000 and then 3,000 GETs (DEPTH pipelined at a time); the difference over
# 2,000 requests is the cost of one. Usage: bench/instructions.sh bench.apps:native_app [DEPTH]
# Needs valgrind (Debian package valgrind) and the project's .venv (scripts/test makes it).
# PORT (default: a free one) is where the server listens.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
app="$1"
depth="${2:-1}"
port="${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" "$python" -m trio_httpchannel "$app" \
    --port "$port" --no-access-log --app-dir "$repo" >/dev/null 2>"$out/err.$1" &
  local server=$!
  "$python" "$repo/bench/instructions_client.py" "$port" "$1" "$depth"
  kill -INT "$server"
  wait "$server" 2>/dev/null || true
  awk '/Collected/ {print $4}' "$out/err.$1"
}

small=$(count 1000)
large=$(count 3000)
echo "$app, depth $depth: $(( (large - small) / 2000 )) instructions a request"
