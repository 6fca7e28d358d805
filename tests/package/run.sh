#!/usr/bin/env bash
# The Debian package, end to end (docs/operations.md#installing-the-debian-package): builds the
# .deb (scripts/deb.sh --ci: the debug binary `cargo test` built, no rebuild), checks its
# contents, `dpkg -i` (the fedgate user, /var/lib/fedgate, the config's owner and mode,
# `fedgate migrate` by postinst), checks the unit with systemd-analyze, starts the installed
# binary as the fedgate user with the packaged configuration (dev mode and a free port through
# the environment; this container runs no systemd), signs in through the OIDC flow, refreshes,
# provisions a SCIM user, reinstalls over it (the upgrade path: data and an edited conffile
# kept), then `dpkg --remove` and `dpkg --purge` and checks that nothing is left.
#
# Needs root (dpkg -i); refuses to run over an installed fedgate package or an existing fedgate
# user. Usage: tests/package/run.sh [DEB]   (DEB: an already built package)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TAG=package
log() { printf '[%s] %s\n' "$TAG" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  log "SKIPPED: installing a package needs root (run as root, e.g. in CI)"
  exit 0
fi
for c in dpkg dpkg-deb setpriv python3 curl; do command -v "$c" >/dev/null || die "$c is required"; done
if dpkg-query -W -f='${db:Status-Status}' fedgate 2>/dev/null | grep -qv '^not-installed$'; then
  die "a fedgate package is installed on this machine: this test would replace and purge it"
fi
getent passwd fedgate >/dev/null && die "a user fedgate exists: this test would delete it on purge"

START=$(date +%s)
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-package.XXXXXX")"
SERVER_PID=""
INSTALLED=""
LOG="$TMP/fedgate.log"
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  set +e
  stop_server
  if [ -n "$INSTALLED" ]; then dpkg --purge fedgate >/dev/null 2>&1 || log "warning: dpkg --purge fedgate failed"; fi
  if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then log "---- fedgate log ----"; tail -n 80 "$LOG" >&2; fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then log "all green ($(( $(date +%s) - START )) s)"; else log "FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build
if [ -n "${1:-}" ]; then
  DEB="$1"
else
  DEB="$(bash "$ROOT/scripts/deb.sh" --ci "$TMP/deb" | tail -n 1)"
fi
[ -f "$DEB" ] || die "no package at $DEB"
log "package $(basename "$DEB"): $(du -k "$DEB" | cut -f1) KiB, installed size $(dpkg-deb -f "$DEB" Installed-Size) KiB ($(( $(date +%s) - START )) s)"

# ---- contents
contents="$(dpkg-deb -c "$DEB" | awk '{print $1, $2, $NF}')"
want() { grep -qE "$1" <<<"$contents" || die "the package has no $2"; }
want '^-rwxr-xr-x (root/root|0/0) \./usr/bin/fedgate$' "/usr/bin/fedgate (0755 root)"
want '^-rw-r----- (root/root|0/0) \./etc/fedgate/fedgate\.toml$' "/etc/fedgate/fedgate.toml (0640)"
want '\./(usr/)?lib/systemd/system/fedgate\.service$' "systemd unit"
want '\./usr/share/man/man1/fedgate\.1(\.gz)?$' "man page"
dpkg-deb -f "$DEB" Depends | grep -q adduser || die "Depends lacks adduser"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/fedgate/fedgate.toml || die "/etc/fedgate/fedgate.toml is not a conffile"
for s in postinst prerm postrm; do dpkg-deb -I "$DEB" "$s" >/dev/null || die "no $s script"; done

# ---- install
log "dpkg -i"
INSTALLED=1
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log" >&2; die "dpkg -i failed"; }
grep -q "migrations applied" "$TMP/dpkg.log" || { cat "$TMP/dpkg.log" >&2; die "postinst did not run fedgate migrate"; }
[ "$(dpkg-query -W -f='${db:Status-Status}' fedgate)" = installed ] || die "fedgate is not installed"

IFS=: read -r _ _ uid _ _ home shell < <(getent passwd fedgate) || die "no fedgate user"
[ "$uid" -lt 1000 ] || die "fedgate is not a system user (uid $uid)"
[ "$home" = /var/lib/fedgate ] || die "fedgate's home is $home"
case "$shell" in */nologin|*/false) ;; *) die "fedgate has a login shell ($shell)";; esac
getent group fedgate >/dev/null || die "no fedgate group"
mode() { stat -c '%a %U:%G' "$1"; }
[ "$(mode /var/lib/fedgate)" = "750 fedgate:fedgate" ] || die "/var/lib/fedgate is $(mode /var/lib/fedgate)"
[ "$(mode /etc/fedgate/fedgate.toml)" = "640 root:fedgate" ] || die "the config is $(mode /etc/fedgate/fedgate.toml)"
[ "$(mode /var/lib/fedgate/master.key)" = "600 fedgate:fedgate" ] || die "the generated master key is $(mode /var/lib/fedgate/master.key)"
[ "$(stat -c %U /var/lib/fedgate/fedgate.db)" = fedgate ] || die "the database is not owned by fedgate"
[ "$(mode /usr/bin/fedgate)" = "755 root:root" ] || die "/usr/bin/fedgate is $(mode /usr/bin/fedgate)"
UNIT="$(dpkg -L fedgate | grep -E '/systemd/system/fedgate\.service$')"
[ -f "$UNIT" ] || die "no unit installed"
[ -L /etc/systemd/system/multi-user.target.wants/fedgate.service ] || die "the unit is not enabled"
/usr/bin/fedgate --version | grep -q '^fedgate ' || die "fedgate --version"
/usr/bin/fedgate --help | grep -q migrate || die "fedgate --help lists no migrate"

# ---- the unit: what the service runs, and systemd's own checks
grep -qx 'ExecStart=/usr/bin/fedgate --config /etc/fedgate/fedgate.toml serve' "$UNIT" || die "unexpected ExecStart"
for d in User=fedgate StateDirectory=fedgate ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  NoNewPrivileges=yes PrivateDevices=yes CapabilityBoundingSet= MemoryDenyWriteExecute=yes \
  SystemCallFilter=@system-service; do
  grep -qx "$d" "$UNIT" || die "the unit lacks $d"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$UNIT" >"$TMP/verify.log" 2>&1 || { cat "$TMP/verify.log" >&2; die "systemd-analyze verify $UNIT"; }
  if grep -v '^$' "$TMP/verify.log" | grep -q .; then cat "$TMP/verify.log" >&2; die "systemd-analyze verify printed warnings"; fi
  exposure="$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')"
  log "systemd-analyze verify: clean; security exposure ${exposure:-?} (0 = locked down, 10 = none)"
  [ -n "$exposure" ] && python3 -c "import sys; sys.exit(0 if float('$exposure') <= 1.5 else 1)" \
    || die "the unit's exposure is ${exposure:-unknown} (want <= 1.5)"
else
  log "systemd-analyze not installed: unit not verified"
fi

# ---- run the installed binary as the service does (user, config, working directory)
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export FEDGATE_URL="http://127.0.0.1:$PORT"
# As the service: its user, configuration and working directory. setpriv executes fedgate in
# place (runuser would stay its parent), so a background server's pid is fedgate's own.
AS_FEDGATE=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin FEDGATE_DEV_MODE=1 FEDGATE_LISTEN="127.0.0.1:$PORT"
  FEDGATE_ISSUER="$FEDGATE_URL" setpriv --reuid=fedgate --regid=fedgate --init-groups
  /usr/bin/fedgate --config /etc/fedgate/fedgate.toml)
as_fedgate() { (cd /var/lib/fedgate && exec "${AS_FEDGATE[@]}" "$@"); }
FEDGATE_ADMIN_KEY="$(as_fedgate admin-key create --name package-test 2>>"$LOG" | tail -n 1)"
export FEDGATE_ADMIN_KEY
[ -n "$FEDGATE_ADMIN_KEY" ] || die "admin-key create printed no key"
start_server() {
  (cd /var/lib/fedgate && exec "${AS_FEDGATE[@]}" serve) >>"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "fedgate serve exited"
    curl -fsS -o /dev/null --max-time 2 "$FEDGATE_URL/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  die "fedgate did not become ready within 30 s"
}
start_server
log "fedgate serve as fedgate on $FEDGATE_URL"
STATE="$TMP/state.json"
flow() { python3 "$HERE/flow.py" "$STATE" "$@" >&2 || die "flow.py $*"; }
flow setup
flow signin
flow refresh
flow scim-create bob
flow scim-get bob
stop_server
[ -z "$(ps -u fedgate -o pid= 2>/dev/null || true)" ] || die "a fedgate process survived stopping the server"
# fedgate wrote only its state directory (the service's ProtectSystem=strict allows no more).
stray="$(find /etc /usr /var /tmp /opt /srv /root /home -xdev -user fedgate -not -path '/var/lib/fedgate' -not -path '/var/lib/fedgate/*' 2>/dev/null | head -5 || true)"
[ -z "$stray" ] || die "files owned by fedgate outside /var/lib/fedgate: $stray"

# ---- reinstall over it (postinst with the old version: migrate again), an edited conffile kept
echo "# edited by the package test" >>/etc/fedgate/fedgate.toml
dpkg -i "$DEB" >"$TMP/dpkg2.log" 2>&1 || { cat "$TMP/dpkg2.log" >&2; die "dpkg -i (reinstall) failed"; }
grep -q '^# edited by the package test$' /etc/fedgate/fedgate.toml || die "the edited conffile was replaced"
[ "$(mode /etc/fedgate/fedgate.toml)" = "640 root:fedgate" ] || die "the config is $(mode /etc/fedgate/fedgate.toml) after reinstall"
as_fedgate admin-key list 2>>"$LOG" | grep -q package-test || die "the data is gone after reinstall"

# ---- remove: binary and unit go; config, state and user stay
dpkg --remove fedgate >"$TMP/dpkg3.log" 2>&1 || { cat "$TMP/dpkg3.log" >&2; die "dpkg --remove failed"; }
[ ! -e /usr/bin/fedgate ] || die "/usr/bin/fedgate left after remove"
[ ! -e "$UNIT" ] || die "$UNIT left after remove"
[ -f /etc/fedgate/fedgate.toml ] && [ -f /var/lib/fedgate/fedgate.db ] && getent passwd fedgate >/dev/null \
  || die "remove must keep the config, the state and the user"

# ---- purge: nothing left
INSTALLED=""
dpkg --purge fedgate >"$TMP/dpkg4.log" 2>&1 || { cat "$TMP/dpkg4.log" >&2; die "dpkg --purge failed"; }
for p in /etc/fedgate /var/lib/fedgate /etc/systemd/system/fedgate.service /etc/systemd/system/multi-user.target.wants/fedgate.service; do
  [ ! -e "$p" ] && [ ! -L "$p" ] || die "$p left after purge"
done
[ -z "$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'fedgate*' 2>/dev/null)" ] || die "deb-systemd-helper state left after purge"
getent passwd fedgate >/dev/null && die "the fedgate user is left after purge"
getent group fedgate >/dev/null && die "the fedgate group is left after purge"
dpkg-query -W -f='${db:Status-Status}' fedgate 2>/dev/null | grep -qv '^not-installed$' && die "dpkg still knows fedgate"
log "installed, ran, signed in, reinstalled, removed and purged cleanly"
