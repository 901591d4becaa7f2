#!/usr/bin/env bash
# demo.sh — `make demo`: start the service stack, build the binaries, and walk
# through the pipeline: producer → bus → consumer → stores.
#
# Grows with the project into the full cutover story (legacy → dual-write →
# shadow-read → influx-primary → influx-only). A step whose subcommand is still
# a placeholder ("not built yet") is reported and skipped; any other failure
# fails the demo.
#
#   DEMO_UNITS=50 DEMO_COUNT=500 DEMO_CONSUME_SECONDS=120 scripts/demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

UNITS=${DEMO_UNITS:-50}
COUNT=${DEMO_COUNT:-500}
CONSUME_SECONDS=${DEMO_CONSUME_SECONDS:-120}
# As fast as the bus takes it; DEMO_PRODUCER_ARGS="--time-scale 1" for real time.
PRODUCER_ARGS=${DEMO_PRODUCER_ARGS:---time-scale 0}
QUEUE=${DEMO_QUEUE:-telemetry.ingest}
LOGDIR=$ROOT/.data/log/demo
mkdir -p "$LOGDIR"

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# placeholder BIN CMD: whether the subcommand is still a placeholder (its
# help says "not yet built").
placeholder() { "bin/$1" "$2" --help 2>&1 | grep -q 'not yet built'; }

step "services (scripts/services.sh up)"
scripts/services.sh up
eval "$(scripts/services.sh env)"

step "build (make build → bin/)"
make --no-print-directory build
for b in producer consumer backfill migrate; do
	note "bin/$b: $(bin/$b --help | awk '/^COMMANDS:/ {on=1; next} on && /^ *[a-z]/ && !/help, h/ {gsub(/^ +/, ""); split($0, a, /[ ,]/); printf "%s ", a[1]} /^GLOBAL OPTIONS:/ {on=0}')"
done

consumer_pid=
cleanup() {
	if [[ -n $consumer_pid ]] && kill -0 "$consumer_pid" 2>/dev/null; then
		kill -TERM "$consumer_pid" 2>/dev/null || true
		wait "$consumer_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

failed=0
legacy_count() { psql "$PG_DSN" -X -q -At -c 'select count(*) from legacy.readings' 2>/dev/null || echo 0; }
legacy_before=$(legacy_count)

step "consumer run (background; log $LOGDIR/consumer.log)"
if placeholder consumer run; then
	note "skipped: consumer run is not built yet"
else
	HTTP_ADDR=${DEMO_CONSUMER_HTTP_ADDR:-127.0.0.1:9102} bin/consumer run >"$LOGDIR/consumer.log" 2>&1 &
	consumer_pid=$!
	# A working consumer keeps running; a broken one exits at once. Give it a
	# bounded moment to show which.
	for _ in $(seq 1 20); do
		kill -0 "$consumer_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$consumer_pid" 2>/dev/null; then
		note "running (pid $consumer_pid)"
	else
		rc=0
		wait "$consumer_pid" || rc=$?
		consumer_pid=
		note "FAILED: consumer run exited $rc:"
		tail -n 20 "$LOGDIR/consumer.log" | sed 's/^/      /'
		failed=1
	fi
fi

step "producer simulate --units $UNITS --count $COUNT $PRODUCER_ARGS (log $LOGDIR/producer.log)"
rc=0
if placeholder producer simulate; then
	note "skipped: producer simulate is not built yet"
elif HTTP_ADDR=${DEMO_PRODUCER_HTTP_ADDR:-127.0.0.1:9101} bin/producer simulate --units "$UNITS" --count "$COUNT" $PRODUCER_ARGS >"$LOGDIR/producer.log" 2>&1 || { rc=$?; false; }; then
	note "done"
	tail -n 5 "$LOGDIR/producer.log" | sed 's/^/      /'
else
	note "FAILED: producer simulate exited $rc:"
	tail -n 20 "$LOGDIR/producer.log" | sed 's/^/      /'
	failed=1
fi

# queue_backlog: ready + unacked messages of the ingest queue, from the
# management API (its figures lag by up to 5 seconds).
queue_backlog() {
	curl -sf --max-time 5 "${AMQP_MANAGEMENT_URL%/}/api/queues/%2F/$QUEUE" |
		tr ',' '\n' | awk -F: '$1 == "\"messages\"" {print $2; found=1} END {if (!found) print "unknown"}'
}

if [[ -n $consumer_pid ]]; then
	step "waiting (up to ${CONSUME_SECONDS}s) for the consumer to empty $QUEUE, then stopping it"
	produced_at=$SECONDS
	deadline=$((SECONDS + CONSUME_SECONDS))
	backlog=unknown
	while ((SECONDS < deadline)) && kill -0 "$consumer_pid" 2>/dev/null; do
		backlog=$(queue_backlog || echo unknown)
		# Only trust a zero once the management figures are fresh.
		if [[ $backlog == 0 ]] && ((SECONDS - produced_at >= 6)); then break; fi
		sleep 1
	done
	if [[ $backlog == 0 ]]; then
		note "$QUEUE is empty after $((SECONDS - produced_at))s"
	else
		note "FAILED: $QUEUE still holds ${backlog} messages after ${CONSUME_SECONDS}s"
		failed=1
	fi
	cleanup
	consumer_pid=
	tail -n 5 "$LOGDIR/consumer.log" | sed 's/^/      /'
fi

step "what landed in the stores"
legacy_after=$(legacy_count)
note "legacy store ($PG_DSN): $legacy_after readings ($((legacy_after - legacy_before)) new in this run)"
note "InfluxDB ($INFLUX_URL, database ${INFLUX_BUCKET%/*}) measurements: $(curl -sS -G "$INFLUX_URL/query" --data-urlencode "db=${INFLUX_BUCKET%/*}" --data-urlencode 'q=SHOW MEASUREMENTS' 2>&1)"
echo

if ((failed)); then
	echo "demo: some steps failed (see above)"
	exit 1
fi
echo "demo: done"
