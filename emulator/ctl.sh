#!/usr/bin/env bash
# Start, stop or probe the local Cosmos DB endpoint on loopback (used by `make migrate` / `make emulator-stop`).
# usage: emulator/ctl.sh start|stop|status [PORT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$(cd "$here/.." && pwd)/.local-endpoint"
port="${2:-8081}"

answers() {
  node -e "require('https').get({host: '127.0.0.1', port: $port, path: '/', rejectUnauthorized: false},
    () => process.exit(0)).on('error', () => process.exit(1)).setTimeout(2000, () => process.exit(1))"
}

case "${1:-}" in
  status)
    answers && echo "local endpoint answers at https://localhost:$port" || { echo "nothing answers at port $port"; exit 1; }
    ;;
  start)
    if answers; then echo "local endpoint already answers at https://localhost:$port"; exit 0; fi
    mkdir -p "$state"
    nohup node "$here/server.js" --port "$port" >"$state/server.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 50); do
      if answers; then echo "local endpoint started at https://localhost:$port (pid $(cat "$state/pid"), log $state/server.log)"; exit 0; fi
      sleep 0.2
    done
    echo "error: the local endpoint did not start; see $state/server.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$state/pid" ] && kill "$(cat "$state/pid")" 2>/dev/null; then
      echo "local endpoint stopped (its data is gone: it keeps everything in memory)"
    else
      echo "no local endpoint started by this checkout is running"
    fi
    rm -f "$state/pid"
    ;;
  *)
    echo "usage: emulator/ctl.sh start|stop|status [PORT]" >&2
    exit 2
    ;;
esac
