#!/usr/bin/env bash
# Restore a FacePass backup made by backup_database.sh or `facepass backup`.
#
#   deploy/scripts/restore_database.sh [--compose] [--yes] FILE
#
# Replaces every object of the archive in the database (DROP ... IF EXISTS, then re-create and
# load) in ONE transaction: on any error nothing changes. Stop the FacePass services first
# (docker-compose stop ingest search-api embedder), start them afterwards. The `vector` extension
# is created if missing and never dropped. Connection settings as in backup_database.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/scripts/pg_common.sh
source "$here/pg_common.sh"

yes=false
file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) FACEPASS_PG_MODE=compose ;;
    --yes) yes=true ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) [ -z "$file" ] || die "one FILE only"; file="$1" ;;
  esac
  shift
done
[ -n "$file" ] || die "usage: restore_database.sh [--compose] [--yes] FILE"
[ -f "$file" ] || die "no backup file $file"

load_postgres_settings
if [ "$yes" != true ]; then
  read -r -p "Replace the FacePass tables of database $POSTGRES_DB ($FACEPASS_PG_MODE) with $file? [y/N] " answer
  [[ "$answer" =~ ^[yY] ]] || die "aborted"
fi

pg_restore_archive "$file"
echo "restored $file into $POSTGRES_DB:"
pg_run psql -X -A -t -v ON_ERROR_STOP=1 -c \
  "SELECT 'sessions ' || (SELECT count(*) FROM sessions) || ', photos ' || (SELECT count(*) FROM photos) || ', face_embeddings ' || (SELECT count(*) FROM face_embeddings)"
