#!/usr/bin/env bash
# System calls the server makes for one request at c1, counted by the kernel (perf stat's
# syscall tracepoints: nothing is stopped or slowed, unlike strace): the CLI serves APP on CPU 0
# while h2load sends COUNT GETs one after the other on one keep-alive connection from CPU 1.
# Prints each count a request: reads, failed reads (EAGAIN), writes, epoll_ctl, epoll_wait,
# those of them that returned at once (a scheduler pass) and all system calls; the epoll_wait
# calls that did not return at once are the server's sleeps. The split depends on how fast the
# client turns around, so compare runs made one after the other on the same machine.
# Usage: bench/syscalls.sh bench.apps:native_app [COUNT]. Needs perf (Debian linux-perf), h2load
# (nghttp2-client), permission to trace (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
app="$1"
count="${2:-5000}"
port="${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cd "$repo"
taskset -c 0 "$python" -m trio_httpchannel "$app" --port "$port" --no-access-log --app-dir "$repo" >/dev/null 2>"$out/err" &
server=$!
"$python" bench/instructions_client.py "$port" 10 1  # started, and warm
perf stat -x, -o "$out/perf" -p "$server" \
  -e syscalls:sys_enter_read -e syscalls:sys_exit_read --filter 'ret < 0' -e syscalls:sys_enter_write \
  -e syscalls:sys_enter_epoll_ctl -e syscalls:sys_enter_epoll_wait \
  -e syscalls:sys_exit_epoll_wait --filter 'ret == 0' -e raw_syscalls:sys_enter &
perf=$!
sleep 0.5
taskset -c 1 h2load --h1 -n "$count" -c1 -m1 "http://127.0.0.1:$port/" | grep -E "^finished|^requests"
kill -INT "$perf"
wait "$perf" 2>/dev/null || true
kill -INT "$server"
wait "$server" 2>/dev/null || true
awk -F, -v n="$count" '
BEGIN {
  label["syscalls:sys_enter_read"] = "read"
  label["syscalls:sys_exit_read"] = "read that failed (EAGAIN)"
  label["syscalls:sys_enter_write"] = "write"
  label["syscalls:sys_enter_epoll_ctl"] = "epoll_ctl"
  label["syscalls:sys_enter_epoll_wait"] = "epoll_wait"
  label["syscalls:sys_exit_epoll_wait"] = "epoll_wait that returned at once"
  label["raw_syscalls:sys_enter"] = "all system calls"
}
/^[0-9]/ { printf "%-34s %5.2f a request\n", label[$3], $1 / n }' "$out/perf"
