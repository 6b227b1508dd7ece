#!/bin/sh
# Creates Temporal's two databases when missing, then sets up or upgrades their schema to the one
# this admin-tools image carries. Idempotent: compose runs it before every server start.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"
export SQL_PASSWORD="$POSTGRES_PASSWORD"
PORT="${DB_PORT:-5432}"
SCHEMA=/etc/temporal/schema/postgresql/v12

until nc -z "$POSTGRES_SEEDS" "$PORT"; do
  echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT"
  sleep 1
done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair##*:}"
  # "create" fails when the database exists: that is the upgrade case, not an error.
  sql --db "$db" create || echo "database $db exists"
  # Version 0.0 only creates the version table when it is missing; update-schema brings the
  # schema to the newest version in the image, and does nothing when it is there already.
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "Temporal schema is up to date"
