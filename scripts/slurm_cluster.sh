#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests of `--launcher slurm`: start | stop | status.
# Installs nothing: needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root.
# Everything it writes (config, state, logs, pid files) lives under $HALP_SLURM_DIR (default
# /tmp/halp-bench-slurm); the generated slurm.conf describes this host with
# ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroups needed) and two partitions:
# `debug` (default) and `short` (MaxTime 1 minute, for time-limit tests). The node is declared with
# at least 4 CPUs (SlurmdParameters=config_overrides), so small test jobs share a small host.
set -euo pipefail
DIR=${HALP_SLURM_DIR:-/tmp/halp-bench-slurm}
CONF=$DIR/slurm.conf

need() { command -v "$1" >/dev/null || { echo "slurm_cluster.sh: '$1' not found (apt-get install slurm-wlm munge)" >&2; exit 3; }; }

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(( $(nproc --all) > 4 ? $(nproc --all) : 4 ))  # at least 4 (oversubscribed on a smaller host: tests run jobs side by side)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat > "$CONF" <<CONF
ClusterName=halpbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=${HALP_SLURMCTLD_PORT:-6817}
SlurmdPort=${HALP_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=1
SlurmdParameters=config_overrides
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
OverTimeLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
PartitionName=short Nodes=$host Default=NO MaxTime=1 State=UP OverSubscribe=FORCE:4
CONF
}

start() {
  need munged; need slurmctld; need slurmd; need sinfo
  write_conf
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown -R munge:munge /etc/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if ! munge -n >/dev/null 2>&1; then  # a munged already running (the host's own) is used, and left running by stop
    (runuser -u munge -- munged 2>/dev/null || munged --force) >/dev/null
    touch "$DIR/munged.started"
  fi
  export SLURM_CONF=$CONF
  pgrep -F "$DIR/slurmctld.pid" >/dev/null 2>&1 || slurmctld -c -f "$CONF"
  pgrep -F "$DIR/slurmd.pid" >/dev/null 2>&1 || slurmd -f "$CONF"
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "SLURM_CONF=$CONF"
      return 0
    fi
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm_cluster.sh: the node did not come up; see $DIR/log/" >&2
  exit 1
}

stop() {
  export SLURM_CONF=$CONF
  [ -f "$CONF" ] && scancel --quiet -u "$(id -un)" 2>/dev/null || true
  for daemon in slurmd slurmctld; do
    if [ -f "$DIR/$daemon.pid" ]; then
      pid=$(cat "$DIR/$daemon.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      rm -f "$DIR/$daemon.pid"
    fi
  done
  if [ -f "$DIR/munged.started" ] && [ -f /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$DIR/munged.started"
  fi
  rm -rf "$DIR/state" "$DIR/spool"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF=$CONF sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
