#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (Debian/Ubuntu, as root), for trying
# `comp grid` without a cluster and for CI. Stop it with stop.sh (by PID, from pid files).
#
#   sudo launchers/local-slurm/start.sh      # installs slurmctld slurmd slurm-client munge if missing
#   sinfo                                    # one node, idle
#   sudo launchers/local-slurm/stop.sh
#
# The daemons are started by hand (no systemd needed): munged as user munge, then
# slurmctld and slurmd, which daemonize and write pid files under $COMP_SLURM_DIR.
# /etc/slurm/slurm.conf is written from `slurmd -C`; an existing slurm.conf that this
# script did not write is never touched (the script stops with an error instead).
set -euo pipefail

DIR=${COMP_SLURM_DIR:-/var/tmp/comp-slurm}   # pid files, logs, spool directories
CONF=/etc/slurm/slurm.conf
MARK="# written by comp launchers/local-slurm/start.sh"

if [ "$(id -u)" != 0 ]; then
    echo "error: run as root (the daemons need it)" >&2
    exit 2
fi

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    echo "installing slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# 2. munge: a key and a running munged
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key && chmod 0755 /run/munge
if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    runuser -u munge -- /usr/sbin/munged
fi

# 3. slurm.conf from this machine's hardware
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "error: $CONF exists and was not written by this script; not touching it" >&2
    exit 2
fi
mkdir -p "$DIR/slurmctld" "$DIR/slurmd" /etc/slurm
host=$(hostname -s)
hw=$(slurmd -C | head -1)                    # NodeName=... CPUs=... RealMemory=...
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$hw"; }
mem=$(( $(field RealMemory) * 9 / 10 ))
cat > "$CONF" <<CONF
$MARK
ClusterName=comp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=30
StateSaveLocation=$DIR/slurmctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
MinJobAge=300
ReturnToService=2
SchedulerParameters=sched_interval=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(field CPUs) Boards=$(field Boards) SocketsPerBoard=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# 4. the daemons (each daemonizes and writes its pid file)
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running "$DIR/slurmctld.pid" || slurmctld -c
running "$DIR/slurmd.pid" || slurmd

# 5. wait for the node to be idle
for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        sinfo
        exit 0
    fi
    sleep 0.1
done
echo "error: the node did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
sinfo >&2 || true
exit 1
