#!/usr/bin/env bash
# Downsamples a range of history on InfluxDB 1.8 with the continuous queries'
# own SELECTs (continuous_queries.influxql), for what the CQs' RESAMPLE FOR 1h
# never sees: backfilled or migrated ranges. Run it after `backfill run
# --execute` (or any bulk write) over the same range. Idempotent: re-running
# overwrites the same points with the same values.
#
#   deploy/influxdb/resample.sh FROM TO [URL] [DATABASE]
#   deploy/influxdb/resample.sh 2026-10-01T00:00:00Z 2026-11-01T00:00:00Z
#
# FROM is widened down and TO up to 5-minute boundaries; the range is done a
# day at a time, every CQ for a day before the next day (bsu_site_5m_power
# reads bsu_5m). Defaults: $INFLUX_URL or http://127.0.0.1:8086, telemetry.
set -euo pipefail
if [[ $# -lt 2 ]]; then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
from=$(date -u -d "$1" +%s) || { echo "resample: FROM $1 is not a time" >&2; exit 2; }
to=$(date -u -d "$2" +%s) || { echo "resample: TO $2 is not a time" >&2; exit 2; }
url=${3:-${INFLUX_URL:-http://127.0.0.1:8086}}
db=${4:-telemetry}
from=$((from / 300 * 300))
to=$(((to + 299) / 300 * 300))
((from < to)) || { echo "resample: empty range" >&2; exit 2; }
mapfile -t selects < <(grep '^CREATE CONTINUOUS QUERY' "$(dirname "$0")/continuous_queries.influxql" | sed -E 's/^.* BEGIN (SELECT .*) END$/\1/')
((${#selects[@]} > 0)) || { echo "resample: no continuous queries found" >&2; exit 1; }
n=0
for ((s = from; s < to; s += 86400)); do
	e=$((s + 86400 < to ? s + 86400 : to))
	where="WHERE time >= '$(date -u -d "@$s" +%FT%TZ)' AND time < '$(date -u -d "@$e" +%FT%TZ)'"
	for q in "${selects[@]}"; do
		q=${q/ GROUP BY / $where GROUP BY }
		out=$(curl -sS --max-time 600 -XPOST "$url/query" --data-urlencode "db=$db" --data-urlencode "q=$q") ||
			{ echo "resample: $url unreachable" >&2; exit 1; }
		if [[ $out == *'"error"'* ]]; then
			echo "resample: ${q:0:100}...: $out" >&2
			exit 1
		fi
		n=$((n + 1))
	done
	echo "resample: $(date -u -d "@$s" +%FT%TZ) .. $(date -u -d "@$e" +%FT%TZ) done"
done
echo "resample: $n statements on $db at $url"
