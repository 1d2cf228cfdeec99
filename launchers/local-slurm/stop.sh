#!/usr/bin/env bash
# Stop the one-node cluster started by start.sh: cancel its jobs, then stop slurmd,
# slurmctld and munged, each by the PID in its pid file (nothing is killed by name).
set -uo pipefail

DIR=${COMP_SLURM_DIR:-/var/tmp/comp-slurm}

stop() {  # stop PIDFILE: TERM, wait up to 10 s, then KILL
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
}

# jobs still on this cluster first, so that no job process outlives the daemons
if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
        # shellcheck disable=SC2086
        scancel $jobs
        for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
    fi
fi
stop "$DIR/slurmd.pid"
stop "$DIR/slurmctld.pid"
stop /run/munge/munged.pid
echo "local slurm stopped"
