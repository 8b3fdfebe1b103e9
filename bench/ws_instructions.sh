#!/usr/bin/env bash
# Instructions the server spends on one echoed WebSocket message, counted by callgrind (repeatable
# whatever else the machine does, unlike timings): the CLI serves APP (one whose WebSocket route
# echoes, such as bench.apps:native_websocket_app) under valgrind while CONNECTIONS WebSockets
# echo 1,000 and then 3,000 binary messages of 1 KiB, one on each WebSocket per round; the
# difference over 2,000 messages is the cost of one (the handshakes and the start cancel out).
# Usage: bench/ws_instructions.sh bench.apps:native_websocket_app [CONNECTIONS]
# Needs valgrind (Debian package valgrind) and the project's .venv (scripts/test makes it).
# PORT (default: a free one) is where the server listens.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
app="$1"
connections="${2:-1}"
port="${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {
  PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" "$python" -m trio_httpchannel "$app" \
    --port "$port" --no-access-log --app-dir "$repo" >/dev/null 2>"$out/err.$1" &
  local server=$!
  (cd "$repo" && "$python" -m bench.ws_instructions_client "$port" "$1" "$connections")
  kill -INT "$server"
  wait "$server" 2>/dev/null || true
  awk '/Collected/ {print $4}' "$out/err.$1"
}

small=$(count 1000)
large=$(count 3000)
echo "$app, $connections WebSockets: $(( (large - small) / 2000 )) instructions a message"
