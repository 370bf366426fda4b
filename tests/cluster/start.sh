#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (munged, slurmctld, slurmd), for the SLURM test.
#
#   sudo bash tests/cluster/start.sh [STATE_DIR]      (default: /tmp/lth-slurm)
#
# Needs root and Debian's `slurm-wlm` and `munge` packages (SLURM 22.05 on Debian 12). slurm.conf,
# spool, state, logs and pid files all live in STATE_DIR; /etc/slurm/slurm.conf becomes a link to
# STATE_DIR/slurm.conf (job steps read the default path), and only when no slurm.conf is there.
# On success it prints SLURM_CONF=STATE_DIR/slurm.conf. tests/cluster/stop.sh STATE_DIR stops
# exactly the daemons started here and removes the link.
#
# Exit codes: 0 the cluster is up and a test job ran; 2 it cannot run here (not root, packages
# missing) -- the caller skips; 1 it should have worked but did not (see STATE_DIR/log/).
set -euo pipefail

STATE=${1:-${LTH_SLURM_DIR:-/tmp/lth-slurm}}
CTLD_PORT=${LTH_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${LTH_SLURM_SLURMD_PORT:-6818}

cannot() { echo "cannot start a test SLURM cluster: $*" >&2; exit 2; }
fail() { echo "test SLURM cluster failed: $*" >&2; tail -n 20 "$STATE"/log/*.log >&2 2>/dev/null || true; exit 1; }

[ "$(id -u)" = 0 ] || cannot "needs root (it starts munged, slurmctld and slurmd)"
for bin in munged slurmctld slurmd sbatch squeue scontrol srun; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] \
        || cannot "'$bin' not found (apt-get install slurm-wlm munge)"
done
export PATH="$PATH:/usr/sbin"

if [ -f "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
    echo "SLURM_CONF=$STATE/slurm.conf"   # already running (started by an earlier call)
    exit 0
fi

# A slurm.conf that is not ours (a real SLURM installation) is never touched.
if [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    [ "$(readlink /etc/slurm/slurm.conf)" = "$STATE/slurm.conf" ] \
        || cannot "/etc/slurm/slurm.conf exists and is not this test cluster's"
fi
mkdir -p "$STATE"/{state,spool,log}
NODE=$(hostname -s)

# munge: the key (1024 random bytes, owned by munge, mode 400), then munged as the munge user.
# An munged that already answers is reused and left alone by stop.sh.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null || fail "munged does not answer"
    cp /run/munge/munged.pid "$STATE/munged.pid"   # ours: stop.sh ends it
fi

# The node: its CPUs and memory as slurmd sees them (RealMemory a little under the total).
read -r CPUS MEM < <(slurmd -C | awk '/^NodeName/ {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["CPUs"], int(v["RealMemory"] * 0.95) }')
[ -n "${CPUS:-}" ] && [ -n "${MEM:-}" ] || fail "slurmd -C did not report CPUs and memory"

cat > "$STATE/slurm.conf" <<EOF
# One-node test cluster written by tests/cluster/start.sh: runs as root, no cgroups, no accounting.
ClusterName=lthtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for an hour (there is no sacct without accounting).
MinJobAge=3600
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$STATE/slurm.conf"
# Job steps inside a job (srun) do not see SLURM_CONF, so link the default path to this config.
if [ ! -L /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
fi

# -c: a clean start (no jobs from an earlier run of the state dir).
slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start"
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
scontrol ping | grep -q UP || fail "slurmctld does not answer"
slurmd -f "$SLURM_CONF" -N "$NODE" || fail "slurmd did not start"
for _ in $(seq 100); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    case "$state" in idle | mix | alloc) break ;; esac
    sleep 0.2
done
case "$state" in idle | mix | alloc) ;; *) fail "node $NODE is '$state', not idle" ;; esac

# A real job end to end.
out=$(srun -N1 -n1 -t 1 echo slurm-ok 2>&1) || fail "srun: $out"
[ "$out" = slurm-ok ] || fail "srun said: $out"
echo "SLURM_CONF=$SLURM_CONF"
