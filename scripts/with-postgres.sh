#!/usr/bin/env bash
# Runs the given command beside a throw-away PostgreSQL 15 from Debian's packages: initdb in a
# temporary folder, reached only through a Unix socket in that folder (no TCP port), a SCRAM
# password for the user `calltrace`; stopped and removed when the command ends, however it ends.
# The command finds the server in CALLTRACE_TEST_POSTGRES_URL and _PASSWORD_FILE: under
# `make test-postgres` every service a test starts gets a database of its own on it.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/initdb" ] || { echo "PostgreSQL 15 is not installed (make deps installs postgresql-15)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/calltrace-pg-XXXXXX")
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: as the postgres user the package creates.
    as_postgres=(runuser -u postgres --)
    chown postgres "$dir"
fi
stop() {
    ${as_postgres[@]+"${as_postgres[@]}"} env -C "$dir" "$bin/pg_ctl" stop -m immediate -w -D "$dir/data" > /dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
umask 077
head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/password"
echo >> "$dir/password"
[ "$(id -u)" = 0 ] && chown postgres "$dir/password"
${as_postgres[@]+"${as_postgres[@]}"} env -C "$dir" "$bin/initdb" -D "$dir/data" --no-sync --no-instructions --locale=C -E UTF8 \
    -A scram-sha-256 -U calltrace --pwfile="$dir/password" > "$dir/initdb.log"
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 6000
fsync = off
full_page_writes = off
CONF
${as_postgres[@]+"${as_postgres[@]}"} env -C "$dir" "$bin/pg_ctl" start -w -t 120 -D "$dir/data" -l "$dir/server.log" > /dev/null
# The services read the password from a file only its owner can read: the test runner's copy.
cp "$dir/password" "$dir/client-password" && chown "$(id -u)" "$dir/client-password" && chmod 600 "$dir/client-password"
export CALLTRACE_TEST_POSTGRES_URL="postgres://calltrace@/postgres?host=$dir"
export CALLTRACE_TEST_POSTGRES_PASSWORD_FILE="$dir/client-password"
"$@"
