#!/bin/bash
# PID 1 of one node of the Pacemaker lab (tests/integration/pacemaker_lab.py): run inside the
# node's network namespace by `unshare --mount --uts --pid --fork --mount-proc --propagation private`.
#   pacemaker_node.sh NODE_DIR NAME SUPZ GROUP...
# The node's own state lives in NODE_DIR on the host (logs survive a killed node); each GROUP's
# supz root is NODE_DIR/GROUP, seen inside the node as /srv/GROUP (one path on every node, as on
# real hosts). Killing this process (SIGKILL) ends every process of the node: a power-off.
set -e
D=$1; NAME=$2; SUPZ=$3; shift 3
hostname "$NAME"
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/lock /run/resource-agents /run/sshd && chmod 1755 /run/resource-agents
mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm
mount --bind "$D/lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/lib-corosync" /var/lib/corosync
mount --bind "$D/lib-heartbeat" /var/lib/heartbeat
mount --bind "$D/log" /var/log
mount --bind "$D/etc-corosync" /etc/corosync
# The agents Pacemaker finds: the distribution's, plus ocf:supz:registry written by this supz.
mkdir -p /run/ocf-host && mount --bind /usr/lib/ocf/resource.d /run/ocf-host
mount -t tmpfs -o mode=0755,size=4m tmpfs /usr/lib/ocf/resource.d
for provider in /run/ocf-host/*; do
    mkdir "/usr/lib/ocf/resource.d/${provider##*/}"
    mount --bind "$provider" "/usr/lib/ocf/resource.d/${provider##*/}"
done
"$SUPZ" pacemaker install-agent >/dev/null
# ssh runs the syncer's commands through root's shell: keep a developer's ~/.bashrc out of it.
[ -e /root/.bashrc ] && mount --bind /dev/null /root/.bashrc
mount -t tmpfs -o mode=0755,size=4m tmpfs /srv
for group in "$@"; do
    mkdir "/srv/$group" && mount --bind "$D/$group" "/srv/$group"
done
set +e

/usr/sbin/sshd -D -e -f "$D/sshd/sshd_config" >>"$D/log/sshd.log" 2>&1 &
corosync -f >/var/log/corosync/stdout.log 2>&1 &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none
pacemakerd >/var/log/pacemaker/stdout.log 2>&1 &
for group in "$@"; do
    "$SUPZ" --root "/srv/$group" up >>"$D/log/supz-up.log" 2>&1
done
echo "$(date +%s.%N) up" >>"$D/log/node-init.log"
trap 'exit 0' TERM INT
while true; do wait; sleep 1; done
