#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: initdb into a temporary directory, listen on 127.0.0.1 on a
# free port (and on a unix socket inside that directory), password authentication, no durability (fsync off: the
# data is deleted on stop anyway).
#
#   .ci/postgres.sh install            # apt-get install postgresql, only if no initdb is found (needs root)
#   eval "$(.ci/postgres.sh start)"    # exports PCHR_TEST_POSTGRES_URL and PCHR_TEST_POSTGRES_DIR
#   make test                          # the storage tests now run on SQLite and on PostgreSQL
#   .ci/postgres.sh stop "$PCHR_TEST_POSTGRES_DIR"
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user that the Debian
# package creates (override with PCHR_PG_USER); as anyone else it belongs to you. `start` writes only `export`
# lines to stdout; progress goes to stderr.
set -Eeuo pipefail

PG_USER=${PCHR_PG_USER:-postgres}
DB_NAME=pchr
DB_ROLE=pchr

log() { printf '%s\n' "postgres.sh: $*" >&2; }

pg_bindir() {
    # Debian keeps the server programs in /usr/lib/postgresql/<major>/bin, off the PATH; take the newest.
    if [[ -n "${PG_BINDIR:-}" ]]; then
        printf '%s\n' "$PG_BINDIR"
        return
    fi
    local found
    found=$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$found" ]]; then
        dirname "$found"
    elif command -v initdb >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

as_owner() {
    # Run a server program as the cluster's owner.
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

cmd_install() {
    if [[ -n "$(pg_bindir)" ]]; then
        log "PostgreSQL already installed ($(pg_bindir))"
        return
    fi
    if [[ $EUID -ne 0 ]]; then
        log "no PostgreSQL found: install the Debian package 'postgresql' (needs root)"
        exit 1
    fi
    log "installing the Debian package postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
    local bindir dir port password
    bindir=$(pg_bindir)
    if [[ -z "$bindir" ]]; then
        log "no initdb found: run '$0 install' first (or set PG_BINDIR)"
        exit 1
    fi
    dir=${1:-$(mktemp -d -t pchr-postgres.XXXXXX)}
    mkdir -p "$dir"
    touch "$dir/.pchr-postgres" # marks the directory as one `stop` may delete
    # Whatever goes wrong from here on, leave no half-started cluster behind.
    trap 'stop_cluster "$dir"' ERR
    chmod 0700 "$dir"
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_USER" "$dir"
    fi
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" >"$dir/password"
    chmod 0600 "$dir/password"
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_USER" "$dir/password"
    fi

    as_owner "$bindir/initdb" --pgdata="$dir/data" --username="$DB_ROLE" --pwfile="$dir/password" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        {
            cat "$dir/initdb.log" >&2
            false
        }
    # Binding can still lose a race for the port: try a few.
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bindir/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 start \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir" \
            -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null 2>&1; then
            break
        fi
        port=""
    done
    if [[ -z "$port" ]]; then
        cat "$dir/server.log" >&2
        log "the server did not start"
        false
    fi
    PGPASSWORD=$password "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_ROLE" -d postgres \
        -c "CREATE DATABASE $DB_NAME" >&2
    printf '%s\n' "$port" >"$dir/port"
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
    trap - ERR
    printf 'export PCHR_TEST_POSTGRES_URL=%q\n' "postgresql+psycopg2://$DB_ROLE:$password@127.0.0.1:$port/$DB_NAME"
    printf 'export PCHR_TEST_POSTGRES_DIR=%q\n' "$dir"
}

stop_cluster() {
    local dir=$1
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$(pg_bindir)/pg_ctl" --pgdata="$dir/data" --mode=fast --wait stop >/dev/null
        log "stopped the cluster in $dir"
    fi
    # Only ever delete a directory `start` made.
    if [[ -f "$dir/.pchr-postgres" ]]; then
        rm -rf "$dir"
    fi
}

cmd_stop() {
    stop_cluster "${1:?usage: $0 stop DIR}"
}

case "${1:-}" in
install) cmd_install ;;
start)
    shift
    cmd_start "$@"
    ;;
stop)
    shift
    cmd_stop "$@"
    ;;
*)
    log "usage: $0 install | start [DIR] | stop DIR"
    exit 2
    ;;
esac
