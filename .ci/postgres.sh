#!/usr/bin/env bash
# A PostgreSQL for the Prefect-on-PostgreSQL test (tests/test_schedule.py): Debian's packaged
# server, in a cluster of its own ("provenance_ci", port 55432) that listens on 127.0.0.1 only,
# with a role that may create databases (the test creates and drops one per run).
#
#   eval "$(bash .ci/postgres.sh)"   # install if missing, start; prints the export line:
#                                    # PROVENANCE_TEST_POSTGRES_URL=postgresql+asyncpg://...
#   bash .ci/postgres.sh stop        # stop the cluster again
#
# Everything but the export line goes to stderr.  Needs root (or sudo) for apt-get and the cluster.
set -euo pipefail
PORT="${PROVENANCE_PG_PORT:-55432}"
CLUSTER=provenance_ci
ROLE=provenance
PASSWORD=provenance
DB=provenance
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"

version() { ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1; }

if [ "${1:-start}" = stop ]; then
    v="$(version)"
    [ -n "$v" ] && $SUDO pg_ctlcluster "$v" "$CLUSTER" stop >&2 2>/dev/null || true
    exit 0
fi

if [ -z "$(version)" ] || ! command -v pg_ctlcluster >/dev/null; then
    echo "postgres.sh: installing Debian's postgresql" >&2
    $SUDO apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
V="$(version)"

if ! $SUDO pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$V/$CLUSTER"; then
    $SUDO pg_createcluster "$V" "$CLUSTER" -p "$PORT" -- --auth-local=peer --auth-host=scram-sha-256 >&2
    printf "listen_addresses = '127.0.0.1'\nmax_connections = 200\n" |
        $SUDO tee "/etc/postgresql/$V/$CLUSTER/conf.d/provenance_ci.conf" >/dev/null
fi
if ! $SUDO pg_lsclusters -h | awk -v c="$CLUSTER" '$2 == c {print $4}' | grep -qx online; then
    $SUDO pg_ctlcluster "$V" "$CLUSTER" start >&2
fi

psql_admin() { $SUDO runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
for _ in $(seq 1 60); do  # the server accepts connections a moment after pg_ctlcluster returns
    psql_admin -d postgres -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.5
done
psql_admin -d postgres >&2 <<SQL
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END \$\$;
SQL
if [ -z "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql_admin -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi
echo "postgres.sh: PostgreSQL $V cluster $CLUSTER on 127.0.0.1:$PORT" >&2
echo "export PROVENANCE_TEST_POSTGRES_URL=postgresql+asyncpg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
