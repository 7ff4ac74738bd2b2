#!/usr/bin/env bash
# Entrypoint of the compose stack's MongoDB: a replica set with authentication needs a key file that
# its members share. Create one on first start, in the mongo-config volume, then hand over to the
# image's own entrypoint (which creates the root user and runs docker-entrypoint-initdb.d on an empty
# data volume, and drops to the mongodb user; it also chowns the key file to that user).
set -euo pipefail
keyfile=/data/configdb/keyfile
if [ ! -s "$keyfile" ]; then
    # 756 random bytes are 1008 base64 characters; MongoDB accepts 6 to 1024.
    head -c 756 /dev/urandom | base64 -w 0 > "$keyfile"
fi
chmod 400 "$keyfile"
exec docker-entrypoint.sh "$@"
