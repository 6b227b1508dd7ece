#!/bin/sh
# Registers the application's namespace once the server answers; does nothing when it exists.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}"
attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "Temporal did not answer at $TEMPORAL_ADDRESS"
    exit 1
  fi
  sleep 2
done
temporal operator namespace describe --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NAMESPACE" --retention "${RETENTION:-7d}" --address "$TEMPORAL_ADDRESS"
echo "namespace $NAMESPACE is ready"
