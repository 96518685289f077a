#!/usr/bin/env bash
# The publisher's steps, guided: installs what is missing (scripts/setup.sh), then asks for the domain,
# the network and the seed (without echo) and writes .env (0600), makes the folders and the onion key,
# checks the account, and prints the DNS and certificate steps. Run it in the folder you will run
# `docker compose up` (or `npm start`) in.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
exec "$here/scripts/start.sh" init "$@"
