#!/bin/sh
# Starts or stops a Docker engine of the tests' own: data root, exec root, socket and log under DIR, no iptables
# rules and no docker0 bridge (nothing on the host's network changes; images are built with --network host and
# the runner container needs no network). Run it inside a private mount namespace (the tests do) so the engine's
# mounts stay there.
#   dockerd.sh start DIR   -> prints unix://DIR/docker.sock once the engine answers
#   dockerd.sh stop DIR    -> stops it by its pid (TERM, then KILL after 20 s) and unmounts what it left
set -eu
verb=${1:?usage: dockerd.sh start|stop DIR}
dir=${2:?usage: dockerd.sh start|stop DIR}
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"

case "$verb" in
start)
  command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd not found (apt-get install docker.io)" >&2; exit 1; }
  mkdir -p "$dir/data" "$dir/exec"
  dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" -H "unix://$sock" \
    --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
    >"$dir/dockerd.log" 2>&1 &
  i=0
  until docker -H "unix://$sock" version >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ] || ! kill -0 $! 2>/dev/null; then
      tail -20 "$dir/dockerd.log" >&2
      echo "dockerd.sh: the engine did not start (log above, full log in $dir/dockerd.log)" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "unix://$sock"
  ;;
stop)
  [ -f "$pidfile" ] || exit 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || exit 0
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -eq 200 ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
  # The engine leaves its bind of the network namespace (exec/netns/default) mounted: take down
  # whatever is still mounted under DIR, deepest first.
  findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | while read -r target; do
    umount --lazy "$target" 2>/dev/null || true
  done
  ;;
*)
  echo "dockerd.sh: unknown verb $verb (start, stop)" >&2
  exit 2
  ;;
esac
