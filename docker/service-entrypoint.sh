#!/bin/sh
# warmline service entrypoint: refuse placeholder secrets, migrate the schema, then run the command.
#
#   WARMLINE_SKIP_MIGRATIONS=1   do not run `warmline db upgrade` (extra API replicas, see README)
set -eu

# docker/env.example marks every value that must be replaced with CHANGE_ME. Print names, never values.
placeholders=$(env | grep -i 'CHANGE_ME' | cut -d= -f1 || true)
if [ -n "$placeholders" ]; then
    echo "warmline: these settings still hold the CHANGE_ME placeholder from docker/env.example:" >&2
    echo "$placeholders" | sed 's/^/  /' >&2
    echo "warmline: put real values in docker/.env (see docker/README.md) and start again." >&2
    exit 78
fi

# Group-writable files, so the Asterisk container (same group) can use what the service writes.
umask 0007

if [ "${1:-}" = "warmline" ] && [ "${2:-}" = "up" ] && [ "${WARMLINE_SKIP_MIGRATIONS:-0}" != "1" ]; then
    warmline db upgrade
fi

exec "$@"
