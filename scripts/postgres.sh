#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the end-to-end tests and exports
# GATEWAY_TEST_POSTGRES_URL. Uses the given URL, else a server on 127.0.0.1:5432; starts an installed
# Debian cluster that is down; installs Debian's postgresql package when none is installed.
# Exits non-zero (never skips) when no server can be had.
set -euo pipefail

log() { echo "postgres: $*" >&2; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sudo -u postgres sh -c "$*"; fi
}

url="${GATEWAY_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"

can_connect() { command -v psql >/dev/null && psql "$url" -Atqc 'select 1' >/dev/null 2>&1; }

start_installed_cluster() {
  command -v pg_lsclusters >/dev/null || return 1
  local version
  version=$(pg_lsclusters -h 2>/dev/null | awk '{print $1; exit}')
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || return 1
    log "creating cluster $version/main"
    as_root pg_createcluster "$version" main >/dev/null
  fi
  log "starting cluster $version/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
}

install_server() {
  apt_install postgresql || die "no PostgreSQL server, and it could not be installed"
}

wait_until_ready() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  return 1
}

if [ -z "${GATEWAY_TEST_POSTGRES_URL:-}" ] && ! can_connect; then
  command -v pg_isready >/dev/null || install_server
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    start_installed_cluster || { install_server; start_installed_cluster; } || true
  fi
  wait_until_ready || die "PostgreSQL did not come up on 127.0.0.1:5432"
  if ! can_connect; then
    # A fresh Debian install authenticates TCP clients by password: give the postgres role the one
    # the URL carries.
    log "setting the password of role postgres for TCP logins"
    as_postgres "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
  fi
fi

can_connect || die "cannot connect to $url"
log "using $url"
export GATEWAY_TEST_POSTGRES_URL="$url"
