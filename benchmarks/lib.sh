# Helpers shared by the benchmark scripts (peer.sh, overload.sh, soak.sh);
# source it after cd to the repository root. Messages name the script.

SCRIPT_NAME=$(basename "$0" .sh)

# pin CPU COMMAND... runs COMMAND on one CPU (without taskset, anywhere).
# It execs, so a background "(pin 0 server) &" is the server's own
# process and can be killed.
pin() {
  local cpu=$1
  shift
  if command -v taskset >/dev/null 2>&1; then exec taskset -c "$cpu" "$@"; else exec "$@"; fi
}

# port_open PORT reports whether something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free_port PORT... exits when any of the ports is taken.
require_free_port() {
  local p
  for p in "$@"; do
    if port_open "$p"; then
      echo "$SCRIPT_NAME: port $p is already in use; stop what listens there first" >&2
      exit 1
    fi
  done
}

# wait_port PORT [LOG] waits up to 20 s for a listener on PORT, and exits
# naming LOG when none comes.
wait_port() {
  for _ in $(seq 400); do
    port_open "$1" && return 0
    sleep 0.05
  done
  echo "$SCRIPT_NAME: nothing listens on port $1${2:+; see $2}" >&2
  exit 1
}
