#!/usr/bin/env bash
# The Docker image's entrypoint (under tini). Arguments go to scripts/start.sh (`start`, `doctor`, …).
#
# Started as root (the default; `docker run … -v $(pwd)/tor:/root/tor`), it does two things as root
# and nothing else: it hands the bridge's writable folders (TOR_DIR, DATA_DIR, SSL_DIR) to the
# bridge's user, uid 10001, because a host-mounted folder belongs to some host uid and tor refuses a
# DataDirectory or HiddenServiceDir not owned by the user it runs as; then it runs start.sh as
# uid 10001 with a single capability, CAP_NET_BIND_SERVICE, so that the bridge listens on 80 and
# 443 inside the container. The bridge itself never runs as root.
#
# Started as another user already (`docker run --user 10001:10001`, compose `user:`), it changes
# nothing (it could not chown anyway) and runs start.sh as that user: the folders must then be
# that user's already.
#
# Why setpriv with an ambient capability, and not setcap on the node binary:
#  - setpriv is in util-linux, which every Debian image has; unlike su it keeps the environment
#    (the bridge's whole configuration), and it execs, so tini's SIGTERM reaches the bridge itself;
#  - an ambient capability is inherited by start.sh, node, its workers and tor, with nothing stored
#    in the image. A file capability lives in an extended attribute that some build and storage
#    paths drop (the bind then fails only at run time); it hands the capability to every process
#    that runs node (docker exec, the HEALTHCHECK); and a binary with one cannot even be executed
#    where the runtime removed the capability (--cap-drop), where this script still starts;
#  - --no-new-privs: nothing the bridge runs can gain privileges back (setuid binaries, file caps).
# (Docker ≥ 20.10 also lets unprivileged users bind low ports inside a container's own network
# namespace, but not with --network host or on other runtimes; the capability works everywhere.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The image's user `torplus` (Dockerfile.bridge); by number, so this needs no passwd entry.
uid=10001 gid=10001
say() { printf 'entrypoint: %s\n' "$*" >&2; }

# The bridge's defaults (bridge/src/config/schema.ts) when the image's ENV is overridden with "".
tor_dir="${TOR_DIR:-./tor}"
data_dir="${DATA_DIR:-./data}"
ssl_dir="${SSL_DIR:-./ssl_torplus}"

if [ "$(id -u)" -ne 0 ]; then
  for d in "$tor_dir" "$data_dir"; do
    if [ -e "$d" ] && ! [ -w "$d" ]; then
      say "$d is not writable by uid $(id -u); give it to that user (chown -R $(id -u) on the host) or start the container as root"
    fi
  done
  exec "$here/scripts/start.sh" "$@"
fi

# Capability bits (include/uapi/linux/capability.h), read from our own status.
has_cap() { # has_cap SET BIT
  local mask
  mask="$(awk -v k="$1:" '$1 == k { print $2 }' /proc/self/status)"
  (( (16#$mask >> $2) & 1 ))
}
CAP_SETGID=6 CAP_SETUID=7 CAP_NET_BIND_SERVICE=10
if ! has_cap CapEff "$CAP_SETUID" || ! has_cap CapEff "$CAP_SETGID"; then
  # Never fall back to running the bridge as root.
  say "cannot switch to uid $uid (CAP_SETUID/CAP_SETGID were dropped); start the container with --user $uid:$gid"
  exit 1
fi
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }

# Hand each folder to the user: only the entries not already theirs (DATA_DIR can hold gigabytes of
# IPFS blocks; a restart touches nothing), -h so that a symlink planted in a mounted folder cannot
# redirect the chown, -xdev to stay out of anything mounted inside. A read-only mount is left as
# it is: the check below says whether the bridge can live with it.
for d in "$tor_dir" "$data_dir" "$ssl_dir"; do
  mkdir -p -- "$d"
  if ! [ -w "$d" ]; then
    say "$d is read-only; leaving its owner as it is"
    continue
  fi
  n="$(find "$d" -xdev \( \! -uid "$uid" -o \! -gid "$gid" \) -printf . -exec chown -h "$uid:$gid" {} + | wc -c)" ||
    say "could not give all of $d to uid $uid (a user-namespaced or root-squashed mount?)"
  [ "$n" -eq 0 ] || say "gave $d to uid $uid ($n entries)"
  chmod 700 -- "$d" || true
done

# Fail here, with the reason, rather than in tor with a permission error.
for d in "$tor_dir" "$data_dir"; do
  if ! as_user test -w "$d" -a -x "$d"; then
    say "uid $uid cannot write $d (is a folder above it closed to that user, or the mount read-only?)"
    exit 1
  fi
done
if [ -n "${WWW_DIR:-}" ] && ! as_user test -r "$WWW_DIR" -a -x "$WWW_DIR"; then
  say "uid $uid cannot read $WWW_DIR: make the site world-readable (chmod -R a+rX) or set UPSTREAM_URL"
fi

caps=()
if has_cap CapBnd "$CAP_NET_BIND_SERVICE"; then
  caps=(--inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service)
else
  say "CAP_NET_BIND_SERVICE was dropped from this container: ports below 1024 work only where the runtime allows them to every user"
  caps=(--inh-caps=-all)
fi
# The user's own home (the image's /var/lib/torplus), not root's, for anything that looks there.
home="$(getent passwd "$uid" | cut -d: -f6)" || true
[ -z "$home" ] || export HOME="$home"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "${caps[@]}" --no-new-privs -- "$here/scripts/start.sh" "$@"
