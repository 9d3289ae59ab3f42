#!/usr/bin/env bash
# Entrypoint of the ecredit image: run the command given, with SPARK_LOCAL_IP set to this
# container's address unless the environment sets it. Spark (and ecredit, which falls back to
# 127.0.0.1 when SPARK_LOCAL_IP is unset) then binds the driver, master and workers to an address
# the other containers can reach, not to loopback.
set -euo pipefail
if [[ -z "${SPARK_LOCAL_IP:-}" ]]; then
  addr="$(hostname -i 2>/dev/null | awk '{print $1}')" || addr=""
  if [[ -n "$addr" ]]; then
    export SPARK_LOCAL_IP="$addr"
  fi
fi
exec "$@"
