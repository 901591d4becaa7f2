#!/usr/bin/env bash
# Creates the fleet dashboards' continuous queries (continuous_queries.influxql)
# on an InfluxDB 1.8, for the database they are defined ON or another one:
#
#   deploy/influxdb/apply-cqs.sh [URL] [DATABASE]    # defaults: $INFLUX_URL or http://127.0.0.1:8086, telemetry
#
# Idempotent: an identical CQ that exists already is left as it is. A CQ whose
# definition changed must be dropped first (InfluxDB refuses to replace it);
# the error says which. Exits non-zero on any error.
set -euo pipefail
url=${1:-${INFLUX_URL:-http://127.0.0.1:8086}}
db=${2:-telemetry}
file=$(dirname "$0")/continuous_queries.influxql
n=0
while IFS= read -r q; do
	[[ -z $q || $q == --* ]] && continue
	q=${q/ ON \"telemetry\" / ON \"$db\" }
	out=$(curl -sS --max-time 30 -XPOST "$url/query" --data-urlencode "q=$q") || { echo "apply-cqs: $url unreachable" >&2; exit 1; }
	if [[ $out == *'"error"'* ]]; then
		echo "apply-cqs: ${q:0:80}...: $out" >&2
		exit 1
	fi
	n=$((n + 1))
done <"$file"
echo "apply-cqs: $n continuous queries on $db at $url"
