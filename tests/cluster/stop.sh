#!/usr/bin/env bash
# Stop the test SLURM cluster that tests/cluster/start.sh started: slurmd, slurmctld and (only if
# start.sh started it) munged, by the pids recorded in STATE_DIR. Safe to call twice, or when
# nothing was started.
#
#   bash tests/cluster/stop.sh [STATE_DIR]            (default: /tmp/lth-slurm)
set -uo pipefail

STATE=${1:-${LTH_SLURM_DIR:-/tmp/lth-slurm}}
[ -d "$STATE" ] || exit 0

stop_pid() {  # stop_pid NAME PIDFILE: TERM, wait up to 10 s, then KILL
    local name=$1 file=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    rm -f "$file"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    # only a daemon of that name: a recycled pid is left alone
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in "$name"*) ;; *) return 0 ;; esac
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    echo "stop.sh: $name ($pid) needed SIGKILL" >&2
}

# Jobs still running on the node end with slurmd; cancel them first so that they do not linger.
if [ -f "$STATE/slurm.conf" ] && [ -f "$STATE/slurmctld.pid" ]; then
    SLURM_CONF="$STATE/slurm.conf" timeout 10 scancel --full --quiet --user=root >/dev/null 2>&1 || true
fi
stop_pid slurmd "$STATE/slurmd.pid"
stop_pid slurmctld "$STATE/slurmctld.pid"
stop_pid munged "$STATE/munged.pid"
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi
exit 0
