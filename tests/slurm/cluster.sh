#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for the tests:
#
#   tests/slurm/cluster.sh start DIR   # writes /etc/slurm/slurm.conf for this machine's CPUs and
#                                      # memory, starts munged, slurmctld and slurmd, waits for the node
#   sbatch / squeue / scancel / snakemake --executor slurm ...
#   tests/slurm/cluster.sh stop DIR    # cancels every job, stops the three daemons, removes the conf
#
# The configuration is at SLURM's default place, where a job's own srun finds it (the executor
# plugin's job step clears SLURM_* variables, SLURM_CONF included); an /etc/slurm/slurm.conf this
# script did not write is left alone and the start fails. Everything the daemons write (state,
# spool, logs, munge socket) stays under DIR; they run as root, which slurmd needs. `start` exits 77
# when the daemons cannot start here at all (not installed, not root), saying why.
set -euo pipefail
action=${1:?usage: cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop DIR}")
conf=/etc/slurm/slurm.conf
mark="# A one-node test cluster written by tests/slurm/cluster.sh (state in $dir)"
PATH=$PATH:/usr/sbin

cannot() { echo "cannot start SLURM here: $*" >&2; exit 77; }

stop() {
    scancel --user="$(id -un)" 2>/dev/null || true
    for daemon in slurmd slurmctld munged; do
        if [[ -f $dir/$daemon.pid ]]; then
            pid=$(cat "$dir/$daemon.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            rm -f "$dir/$daemon.pid"
        fi
    done
    if [[ -f $conf ]] && head -1 "$conf" | grep -q "tests/slurm/cluster.sh"; then rm -f "$conf"; fi
}

start() {
    for tool in munged slurmctld slurmd sbatch squeue scancel; do
        command -v $tool >/dev/null || cannot "no $tool (apt-get install slurm-wlm munge)"
    done
    [[ $(id -u) == 0 ]] || cannot "slurmd must run as root"
    if [[ -f $conf ]] && ! head -1 "$conf" | grep -q "tests/slurm/cluster.sh"; then
        echo "$conf exists and was not written by this script: not replacing it" >&2
        exit 1
    fi
    mkdir -p "$dir/state" "$dir/spool"
    local key=/etc/munge/munge.key
    if [[ ! -s $key ]]; then
        mkdir -p /etc/munge && dd if=/dev/urandom of=$key bs=1 count=1024 status=none && chmod 400 $key
    fi
    munged --force --key-file=$key --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
        --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" || cannot "munged did not start ($dir/munged.log)"
    local node port
    node=$(slurmd -C | head -1)  # NodeName=<host> CPUs=... RealMemory=... of this machine
    port=${SLURM_TEST_PORT:-16817}
    mkdir -p "$(dirname "$conf")"
    cat > "$conf" <<CONF
$mark
ClusterName=suite
SlurmctldHost=$(hostname -s)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
$node State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    slurmctld || cannot "slurmctld did not start ($dir/slurmctld.log)"
    slurmd || cannot "slurmd did not start ($dir/slurmd.log)"
    for _ in $(seq 60); do
        if [[ $(sinfo -h -o %T 2>/dev/null) == idle* ]]; then
            echo "SLURM up: $node ($conf)"
            return
        fi
        sleep 0.5
    done
    stop
    cannot "the node did not become idle ($dir/slurmctld.log, $dir/slurmd.log)"
}

case $action in
    start) start ;;
    stop) stop ;;
    *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
