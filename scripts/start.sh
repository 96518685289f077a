#!/usr/bin/env bash
# Starts the bridge: the one entry point of `npm start` (after scripts/setup.sh) and of the Docker
# image (ENTRYPOINT, under tini). Arguments go to torplus-bridge: `start` (the default), `fill`,
# `doctor`, `init`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Node 22: the project's own (npm package `node`, installed by setup.sh or the image), else PATH's.
node="$here/node_modules/.bin/node"
[ -x "$node" ] || node="$(command -v node || true)"
if [ -z "$node" ]; then
  echo "start: no node found; run scripts/setup.sh first" >&2
  exit 1
fi
major="$("$node" -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 22 ]; then
  echo "start: Node.js 22 or newer is needed, $node is $("$node" --version); run scripts/setup.sh" >&2
  exit 1
fi
if [ ! -f "$here/bridge/dist/cli.js" ]; then
  echo "start: bridge/dist is missing; run scripts/setup.sh (it builds the bridge)" >&2
  exit 1
fi
if [ "${1:-start}" = start ] && ! command -v "${TOR_BIN:-tor}" >/dev/null 2>&1; then
  echo "start: ${TOR_BIN:-tor} is not installed (Debian: apt-get install tor)" >&2
  exit 1
fi
# exec: the bridge is this process, so SIGTERM (docker stop, tini, Ctrl-C) reaches it directly.
exec "$node" "$here/bridge/dist/cli.js" "${@:-start}"
