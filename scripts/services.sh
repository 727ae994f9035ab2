#!/usr/bin/env bash
# Starts PostgreSQL and Mosquitto on loopback if they are installed but not running, and makes sure
# the test database and a login for it exist. Idempotent; prints what it did.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 1883; then
  echo "starting mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi

if ! port_open 5432; then
  echo "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi

for _ in $(seq 50); do port_open 5432 && port_open 1883 && break; sleep 0.2; done
port_open 1883 || { echo "mosquitto is not listening on 127.0.0.1:1883" >&2; exit 1; }
port_open 5432 || { echo "postgresql is not listening on 127.0.0.1:5432" >&2; exit 1; }

# A role and database for the tests, made as the postgres superuser where we are root.
if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null; then
  psql_su() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"; }
  psql_su -c "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
    || psql_su -c "CREATE DATABASE test"
  # Where loopback is not trust-authenticated (a stock install), the tests get their own login.
  if ! psql -qAt "postgresql://postgres@127.0.0.1:5432/test" -c "SELECT 1" >/dev/null 2>&1; then
    mkdir -p var && umask 077
    [ -s var/test-pg-password ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > var/test-pg-password
    pw=$(cat var/test-pg-password)
    psql_su -c "DO \$\$BEGIN CREATE ROLE warmline_test LOGIN CREATEDB; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$"
    psql_su -c "ALTER ROLE warmline_test PASSWORD '$pw'"
    echo "postgresql://warmline_test:$pw@127.0.0.1:5432/test" > var/test-pg-url
    echo "postgresql: tests log in as warmline_test (password in var/test-pg-password)"
  fi
fi
echo "services: postgresql and mosquitto are up"
