#!/usr/bin/env bash
# Runs inside a clean Debian 12 root (tests/package/harness.sh): installs Debian's supervisor and
# supz's package, then walks the real-host path. Each step prints "step: ..."; the first failure
# ends the run with the reason.
set -euo pipefail
deb="$1"
step() { echo "step: [$(date +%T)] $*"; }
fail() {
    echo "FAILED: $*"
    echo "--- the end of supervisord's log:"; tail -8 /var/log/supervisor/supervisord.log 2>/dev/null || true
    exit 1
}
conf=/etc/supervisor/supervisord.conf

wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local limit=$(( $1 * 10 )); shift
    for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
running() { supervisorctl -c "$conf" status "$1" 2>/dev/null | grep -q RUNNING; }
not_running() { ! supervisorctl -c "$conf" status "$1" 2>/dev/null | grep -q RUNNING; }
answers() { supervisorctl -c "$conf" pid >/dev/null 2>&1; }
extension() { supervisorctl -c "$conf" avail >/dev/null 2>&1 && supz registry list >/dev/null 2>&1; }
# Debian's `/etc/init.d/supervisor restart` starts the new supervisord one second after asking the
# old one to stop, which may still be stopping its programs: stop, wait, start.
restart() {
    local pid; pid="$(cat /var/run/supervisord.pid 2>/dev/null || true)"
    /etc/init.d/supervisor stop >/dev/null || true
    [ -z "$pid" ] || wait_for 30 sh -c "! kill -0 $pid" || fail "supervisord $pid did not stop"
    /etc/init.d/supervisor start >/dev/null
}
as_oper() { setpriv --reuid oper --regid oper --init-groups env HOME=/home/oper "$@"; }

step "install Debian's supervisor (its postinst starts supervisord from /etc/init.d)"
apt-get install -y -qq --no-install-recommends supervisor >/dev/null
cat > /etc/supervisor/conf.d/localprog.conf <<'CONF'
[program:localprog]
command = sleep 100000
CONF
/etc/init.d/supervisor start >/dev/null
wait_for 20 running localprog || fail "Debian's supervisord does not run its conf.d program"

step "install supz's package (offline: everything it needs is a Debian package)"
apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
for cmd in supz supzcli supz-check; do command -v "$cmd" >/dev/null || fail "$cmd not on PATH"; done
agent=/usr/lib/ocf/resource.d/supz/registry
[ -x "$agent" ] || fail "no OCF agent $agent"
"$agent" meta-data | grep -q '<resource-agent name="registry">' || fail "$agent meta-data does not run Debian's supz"
running localprog || fail "installing supz's package touched supervisord"

step "supz --root / init --socket-group ops"
groupadd ops
useradd -m -G ops oper
cp "$conf" /tmp/supervisord.conf.before
supz --root / init --host a --socket-group ops
cmp -s "$conf" /tmp/supervisord.conf.before || fail "init edited Debian's conffile $conf"
grep -q 'rpcinterface:supz' /etc/supervisor/conf.d/supz.conf || fail "no conf.d/supz.conf"
grep -q '^ExecReload=.* update$' /etc/systemd/system/supervisor.service.d/supz.conf || fail "drop-in has no safe ExecReload"

step "restart as Debian does (/etc/init.d/supervisor): extension loaded, socket 0770 root:ops"
restart
wait_for 20 extension || fail "the extension is not loaded after /etc/init.d/supervisor restart"
sock="$(sed -n 's/^file *= *\([^ ;]*\).*/\1/p' "$conf" | head -1)"
[ "$(stat -c %a:%G "$sock")" = "770:ops" ] || fail "socket $sock is $(stat -c %a:%G "$sock"), wanted 770:ops"
supz up | grep -q "already running" || fail "supz up does not see the running supervisord"

step "registry add, then park and unpark as root"
cat > /tmp/web.conf <<'CONF'
[program:web]
command = sleep 100000
startsecs = 1
CONF
supz registry add /tmp/web.conf
wait_for 20 running web || fail "web not RUNNING after registry add"
supzcli stop web >/dev/null
not_running web || fail "web still running after supzcli stop"
[ -f /var/lib/supz/registry/parked/web.conf ] || fail "web not parked"
supzcli start web >/dev/null
wait_for 20 running web || fail "web not RUNNING after supzcli start"

step "park and unpark as oper, a member of the socket group"
as_oper supzcli stop web >/dev/null || fail "oper cannot park web"
[ -f /var/lib/supz/registry/parked/web.conf ] || fail "web not parked by oper"
as_oper supzcli start web >/dev/null || fail "oper cannot unpark web"
wait_for 20 running web || fail "web not RUNNING after oper's start"
grep -q '"user": "oper"' /var/log/supz/audit.jsonl || fail "the audit trail does not name oper"
if as_oper supzcli shutdown >/dev/null 2>&1; then fail "oper could shut supervisord down"; fi

step "supz metrics with Debian's prometheus-client"
supz metrics > /tmp/metrics.out
grep -qx 'supz_applications{state="active"} 1.0' /tmp/metrics.out || fail "metrics: $(grep applications /tmp/metrics.out)"
grep -qx 'supz_supervisord_up 1.0' /tmp/metrics.out || fail "metrics: supervisord not up"

step "man pages and bash completion: supz reg<TAB>, supzcli stop <TAB> as oper"
for page in supz supzcli; do [ -s "/usr/share/man/man1/$page.1.gz" ] || fail "no man page $page(1)"; done
complete_words() {  # complete_words SCRIPT FUNCTION WORD...: what bash would offer for the last word
    local script="$1" function="$2"; shift 2
    local words="" w; for w in "$@"; do words="$words '$w'"; done
    bash -c "source $script; COMP_WORDS=($words); COMP_CWORD=$(( $# - 1 )); $function $1; printf '%s\n' \"\${COMPREPLY[@]}\""
}
got="$(complete_words /usr/share/bash-completion/completions/supz _supz_completion supz reg)"
[ "$got" = registry ] || fail "supz reg<TAB> offered: $got"
got="$(as_oper bash -c "$(declare -f complete_words); complete_words /usr/share/bash-completion/completions/supzcli _supzcli supzcli stop ''")"
echo "$got" | grep -qx web || fail "supzcli stop <TAB> offered: $got"

step "supz doctor passes"
supz doctor > /tmp/doctor.out || { cat /tmp/doctor.out; fail "supz doctor failed"; }
grep -q "socket .* group ops" /tmp/doctor.out || fail "doctor does not check the socket's group"

step "supz down waits for Debian's pid file; a plain supervisord loads the extension; supz up"
pid="$(cat /var/run/supervisord.pid)"
supz down
if kill -0 "$pid" 2>/dev/null; then fail "supz down returned while supervisord $pid still runs"; fi
supervisord -c "$conf"
wait_for 20 running web || fail "web not RUNNING under a plain supervisord"
supz down
supz up | grep -q "pid [0-9]" || fail "supz up does not name supervisord's pid"
wait_for 20 running web || fail "web not RUNNING after supz up"

step "a park survives a restart"
supzcli stop web >/dev/null
restart
wait_for 20 running localprog || fail "localprog not back after the restart"
sleep 1.5
not_running web || fail "a parked web started again after a restart"
supzcli start web >/dev/null
wait_for 20 running web || fail "web not RUNNING after unpark"

step "reinstall Debian's supervisor package, then restart it as Debian does"
apt-get install -y -qq --reinstall supervisor >/dev/null
restart
wait_for 30 running web || fail "web not RUNNING after reinstalling supervisor"
wait_for 10 extension || fail "the extension is not loaded after reinstalling supervisor"
cmp -s "$conf" /tmp/supervisord.conf.before || fail "$conf changed"

step "purge supz: the registry stays, Debian's supervisord starts again"
apt-get purge -y -qq supz >/dev/null
[ -f /var/lib/supz/registry/active/web.conf ] || fail "purging supz removed the registry"
[ ! -e /etc/supervisor/conf.d/supz.conf ] || fail "conf.d/supz.conf still names the removed extension"
restart
wait_for 20 running localprog || fail "Debian's supervisord does not start after supz was purged"

step "reinstall supz after the purge and init again: the registry it left runs again"
apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
supz --root / init --host a >/dev/null
restart
wait_for 20 extension || fail "the extension is not loaded after reinstalling supz"
wait_for 20 running web || fail "web from the registry the purge left is not RUNNING"

step "systemd-analyze verify: Debian's supervisor.service with supz's drop-ins"
/etc/init.d/supervisor stop >/dev/null || true
apt-get install -y -qq --no-install-recommends systemd >/dev/null
systemd-analyze verify supervisor.service || fail "systemd-analyze verify supervisor.service"
systemd-delta --no-pager --type=extended > /tmp/delta.out || true
grep -q "supervisor.service.d/supz.conf" /tmp/delta.out || fail "systemd does not see the drop-in: $(cat /tmp/delta.out)"
echo "inroot: all steps passed"
