#!/usr/bin/env bash
# demo.sh — `make demo`: the whole cutover on this machine, from nothing.
#
#   1. start the services (scripts/services.sh up) and build the binaries;
#   2. reset the demo's own state: PostgreSQL database bsu_demo, InfluxDB
#      database bsu_demo, fresh RabbitMQ names and S3 prefix for this run;
#   3. two consumers in phase legacy; a simulated fleet's last day of
#      history (a day a minute) drains into PostgreSQL;
#   4. a legacy snapshot to MinIO, then dual-write, then live traffic;
#   5. InfluxDB is stopped for a while on purpose: the consumers record the
#      lost window in the gap ledger;
#   6. a second snapshot; backfill repairs the lost window (from the ledger)
#      and the history (from the snapshots); verify;
#   7. the read API (query serve): the same requests answered by PostgreSQL;
#      shadow-read, where every request is also answered by InfluxDB and
#      compared (migrate status shows the counts); the gate into
#      influx-primary takes those comparisons as evidence; the same requests
#      answered by InfluxDB, byte for byte the same; the figures.
#
# Every step prints the real commands and their output. The services stay
# up afterwards (make demo-down stops them); the demo's consumers are
# stopped at the end (it prints how to start them again).
#
#   DEMO_UNITS=300 DEMO_HISTORY_CADENCE=5m DEMO_OUTAGE_SECONDS=20 scripts/demo.sh
#
# The InfluxDB outage needs an InfluxDB that scripts/services.sh started (so
# it may stop it). If the one the stack uses was started by something else,
# or with DEMO_PRIVATE_INFLUX=1 (on a machine others are testing on), the
# demo runs its own through services.sh, apart from the stack (pid file in
# .data/demo/services, data in .data/demo/stack), on DEMO_INFLUX_ADDR
# (default 127.0.0.1:8186); 'scripts/demo.sh down' stops it.
#
#   scripts/demo.sh        run the demo
#   scripts/demo.sh down   stop the demo's console (bin/query serve) and its own InfluxDB, if it started one
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

UNITS=${DEMO_UNITS:-300}
HISTORY_CADENCE=${DEMO_HISTORY_CADENCE:-5m} # a day of 300 units every 5 min: ~86,000 messages
HISTORY_SECONDS=${DEMO_HISTORY_SECONDS:-60} # wall-clock time for the day of history
LIVE_CADENCE=${DEMO_LIVE_CADENCE:-10s}      # live traffic in real time: 30 messages a second
OUTAGE_SECONDS=${DEMO_OUTAGE_SECONDS:-20}
BAD_RATIO=${DEMO_BAD_RATIO:-0.01}
WINDOW=${DEMO_WINDOW:-1h}
DRAIN_SECONDS=${DEMO_DRAIN_SECONDS:-300}
DEMO_INFLUX_ADDR=${DEMO_INFLUX_ADDR:-127.0.0.1:8186}
QUERY_ADDR=${DEMO_QUERY_ADDR:-127.0.0.1:9401}
SHADOW_READS=${DEMO_SHADOW_READS:-1000}
DEMO_INFLUX_RPC_ADDR=${DEMO_INFLUX_RPC_ADDR:-127.0.0.1:8188}
DB=bsu_demo
CONSOLE_ADDR=${DEMO_CONSOLE_ADDR:-127.0.0.1:9400} # the web console's query serve, up from the start and after the demo

DIR=$ROOT/.data/demo
RUN_DIR=${SERVICES_RUN_DIR:-/tmp/flexipack-cutover-services}
mkdir -p "$DIR"
# The demo's own InfluxDB, when it needs one: services.sh in a namespace of
# its own, so it never takes the stack's pid file or data folder.
PRIVATE_INFLUX_ENV=(SERVICES_RUN_DIR="$DIR/services" SERVICES_DATA_DIR="$DIR/stack"
	SERVICES_INFLUX_ADDR="$DEMO_INFLUX_ADDR" SERVICES_INFLUX_RPC_ADDR="$DEMO_INFLUX_RPC_ADDR")

case ${1:-} in
"") ;;
down)
	if [[ -f $DIR/console.pid ]] && kill -0 "$(cat "$DIR/console.pid")" 2>/dev/null; then
		kill -TERM "$(cat "$DIR/console.pid")" && echo "demo: stopped the console (bin/query serve, pid $(cat "$DIR/console.pid"))"
	fi
	rm -f "$DIR/console.pid"
	if [[ -f $DIR/services/influxdb.pid ]]; then
		env "${PRIVATE_INFLUX_ENV[@]}" scripts/services.sh stop influxdb || true
	else
		echo "demo: no InfluxDB of the demo's own is running"
	fi
	exit 0
	;;
*)
	echo "usage: scripts/demo.sh [down]" >&2
	exit 2
	;;
esac
BEGAN=$SECONDS
RUN_ID=$(date -u +%Y%m%dt%H%M%S)

STEP=0
step() {
	STEP=$((STEP + 1))
	local t=$((SECONDS - BEGAN))
	printf '\n==> [%02d:%02d] %d. %s\n' $((t / 60)) $((t % 60)) "$STEP" "$*"
}
note() { printf '    %s\n' "$*"; }
# show CMD...: print the command as an operator would type it, run it, and
# indent its output (stdout and logs).
show() {
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/      /'
}
# clip N: the first N lines, then how many were left out, then the last 3.
clip() {
	awk -v n="$1" '{ l[NR] = $0 } END {
		if (NR <= n + 4) { for (i = 1; i <= NR; i++) print l[i]; exit }
		for (i = 1; i <= n; i++) print l[i]
		printf "      … %d lines left out …\n", NR - n - 3
		for (i = NR - 2; i <= NR; i++) print l[i]
	}'
}
# show_clipped N CMD...: show, with long output clipped.
show_clipped() {
	local n=$1
	shift
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | clip "$n" | sed 's/^/      /'
}
die() {
	printf '\ndemo: FAILED: %s\n' "$*" >&2
	exit 1
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
now_iso() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ---------------------------------------------------------------- services

step "services: scripts/services.sh up"
scripts/services.sh up
eval "$(scripts/services.sh env)"

# influx_owned RUNDIR ADDR: whether the InfluxDB serving ADDR is one that
# services.sh (with pid files in RUNDIR) started: its pid file names a live
# influxd whose config binds ADDR. Only such an InfluxDB may the demo stop.
influx_owned() {
	local pid datadir conf bound
	pid=$(cat "$1/influxdb.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q influxd || return 1
	datadir=$(cat "$1/influxdb.datadir" 2>/dev/null) || return 1
	conf=$datadir/influxdb/influxdb.conf
	bound=$(awk '/^\[http\]/ {h=1; next} /^\[/ {h=0} h && $1 == "bind-address" {gsub(/"/, "", $3); print $3}' "$conf" 2>/dev/null)
	[[ $bound == "$2" ]]
}

# influx_svc start|stop: services.sh for the InfluxDB the demo uses.
INFLUX_SVC=(scripts/services.sh)
INFLUX_ADDR=${INFLUX_URL#http://}
if [[ -z ${DEMO_PRIVATE_INFLUX:-} ]] && influx_owned "$RUN_DIR" "$INFLUX_ADDR"; then
	note "InfluxDB on $INFLUX_ADDR was started by services.sh: the demo stops and starts it for the outage."
else
	if [[ -n ${DEMO_PRIVATE_INFLUX:-} ]]; then
		note "DEMO_PRIVATE_INFLUX is set: the demo runs its own InfluxDB on $DEMO_INFLUX_ADDR and leaves $INFLUX_ADDR alone."
	else
		note "InfluxDB on $INFLUX_ADDR was not started by services.sh, so the demo may not stop it;"
		note "it runs its own on $DEMO_INFLUX_ADDR instead ('scripts/demo.sh down' stops it)."
	fi
	INFLUX_SVC=(env "${PRIVATE_INFLUX_ENV[@]}" scripts/services.sh)
	show "${INFLUX_SVC[@]}" start influxdb
	INFLUX_URL=http://$DEMO_INFLUX_ADDR
	INFLUX_ADDR=$DEMO_INFLUX_ADDR
	influx_owned "$DIR/services" "$INFLUX_ADDR" || die "the InfluxDB on $INFLUX_ADDR is not one services.sh started; set DEMO_INFLUX_ADDR to a free address"
fi
export INFLUX_URL

step "build: make build (bin/producer, bin/consumer, bin/backfill, bin/migrate, bin/query)"
make --no-print-directory build
for b in producer consumer backfill migrate query; do note "bin/$b $(bin/$b --version 2>/dev/null | head -1)"; done

# ---------------------------------------------------------------- reset

step "reset the demo's state (run $RUN_ID)"
pg_admin() { psql "${PG_DSN%/*}/postgres?sslmode=disable" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
influxql() {
	local out
	out=$(curl -sS --max-time 30 -XPOST "$INFLUX_URL/query" --data-urlencode "q=$1") || die "InfluxQL $1: $out"
	[[ $out != *'"error"'* ]] || die "InfluxQL $1: $out"
}
mgmt() { curl -sS --max-time 10 -u guest:guest "$@"; }
MGMT=${AMQP_MANAGEMENT_URL#*@}
MGMT=http://${MGMT#http://}

pg_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
note "PostgreSQL: database $DB dropped and created again (legacy store and cutover state)"
influxql "DROP DATABASE $DB"
influxql "CREATE DATABASE $DB"
note "InfluxDB $INFLUX_URL: database $DB dropped and created again"
# The previous run's queues and exchanges go: each run has its own names.
if [[ -f $DIR/last-run ]]; then
	prev=$(<"$DIR/last-run")
	for q in "demo.$prev.ingest" "demo.$prev.dead"; do mgmt -o /dev/null -XDELETE "$MGMT/api/queues/%2F/$q" || true; done
	for x in "demo.$prev.telemetry" "demo.$prev.dlx"; do mgmt -o /dev/null -XDELETE "$MGMT/api/exchanges/%2F/$x" || true; done
	note "RabbitMQ: removed the previous run's queues and exchanges (demo.$prev.*)"
fi
printf '%s\n' "$RUN_ID" >"$DIR/last-run"

BASE_DSN=${PG_DSN%/*}
export PG_DSN="$BASE_DSN/$DB?sslmode=disable" STATE_DSN="$BASE_DSN/$DB?sslmode=disable"
export INFLUX_BUCKET=$DB/autogen
export S3_PREFIX=demo/$RUN_ID/snapshots
export AMQP_EXCHANGE=demo.$RUN_ID.telemetry AMQP_QUEUE=demo.$RUN_ID.ingest
export AMQP_DEAD_EXCHANGE=demo.$RUN_ID.dlx AMQP_DEAD_QUEUE=demo.$RUN_ID.dead
export HTTP_ADDR='' LOG_FORMAT=text MIGRATE_ACTOR=demo
{
	scripts/services.sh env | grep -v -e '^export PG_DSN' -e '^export STATE_DSN' -e '^export INFLUX_' -e '^export S3_PREFIX'
	printf 'export %s\n' "PG_DSN='$PG_DSN'" "STATE_DSN='$STATE_DSN'" "INFLUX_URL=$INFLUX_URL" "INFLUX_TOKEN=" "INFLUX_ORG=flexipack" \
		"INFLUX_BUCKET=$INFLUX_BUCKET" "S3_PREFIX=$S3_PREFIX" \
		"AMQP_EXCHANGE=$AMQP_EXCHANGE" "AMQP_QUEUE=$AMQP_QUEUE" "AMQP_DEAD_EXCHANGE=$AMQP_DEAD_EXCHANGE" "AMQP_DEAD_QUEUE=$AMQP_DEAD_QUEUE"
} >"$DIR/env"
note "this run: queue $AMQP_QUEUE, dead letters $AMQP_DEAD_QUEUE, snapshots s3://$S3_BUCKET/$S3_PREFIX"
note "its environment, for your own commands: source .data/demo/env"

# ---------------------------------------------------------------- helpers

sql() { psql "$PG_DSN" -X -q -At -c "$1"; }
legacy_count() { sql 'select count(*) from legacy.readings' 2>/dev/null || echo 0; }
influx_count() {
	curl -sS --max-time 30 -G "$INFLUX_URL/query" --data-urlencode "db=$DB" --data-urlencode 'q=SELECT count("schema") FROM "bsu"' |
		grep -o '"values":\[\[[^]]*\]\]' | grep -o '[0-9]*\]\]' | tr -d ']' || echo 0
}
queue_messages() {
	mgmt "$MGMT/api/queues/%2F/$1?columns=messages" 2>/dev/null | grep -o '"messages":[0-9]*' | cut -d: -f2
}
# figure NAME FILE: a number from a producer summary table ("readings  4169 (...)").
figure() { awk -v k="$1" '{ sub(/^ +/, "") } index($0, k) == 1 { s = substr($0, length(k) + 1); sub(/^ +/, "", s); split(s, a, " "); print a[1]; exit }' "$2"; }

# wait_legacy N: wait until the legacy store holds N readings, with progress.
wait_legacy() {
	local want=$1 deadline=$((SECONDS + DRAIN_SECONDS)) n last=0
	while :; do
		n=$(legacy_count)
		if [[ $n == "$want" ]]; then
			note "legacy store: $n of $want readings; queue $AMQP_QUEUE empty"
			return
		fi
		((SECONDS < deadline)) || die "the legacy store holds $n readings, not $want, after ${DRAIN_SECONDS}s (see .data/demo/consumer-*.log)"
		if ((SECONDS - last >= 5)); then
			note "legacy store: $n of $want readings ($(queue_messages "$AMQP_QUEUE" || echo '?') messages queued)"
			last=$SECONDS
		fi
		sleep 1
	done
}

declare -A CONSUMER_PID=()
start_consumer() {
	local id=$1
	bin/consumer run --consumer-id "$id" --phase-poll 1s >"$DIR/$id.log" 2>&1 &
	CONSUMER_PID[$id]=$!
}
LIVE_PID=
QUERY_PID=
cleanup() {
	local rc=$?
	((rc == 0)) || printf '\ndemo: FAILED in step %d (exit %d); logs in .data/demo/\n' "$STEP" "$rc" >&2
	[[ -z $LIVE_PID ]] || kill -INT "$LIVE_PID" 2>/dev/null || true
	[[ -z $QUERY_PID ]] || kill -TERM "$QUERY_PID" 2>/dev/null || true
	for id in "${!CONSUMER_PID[@]}"; do kill -TERM "${CONSUMER_PID[$id]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# start_console runs bin/query serve (the read API and its web console) in
# the background, outliving the demo so the page stays up afterwards;
# 'scripts/demo.sh down' stops it. It takes no shadow reads: the read-API
# step's own query serve (QUERY_ADDR) does, with --shadow-rate 1.
start_console() {
	if [[ -f $DIR/console.pid ]] && kill -0 "$(cat "$DIR/console.pid")" 2>/dev/null; then
		kill -TERM "$(cat "$DIR/console.pid")" 2>/dev/null || true
		sleep 1
	fi
	setsid bin/query serve --http-addr "$CONSOLE_ADDR" --phase-poll 1s --shadow-rate 0 >"$DIR/console.log" 2>&1 </dev/null &
	echo $! >"$DIR/console.pid"
	disown $!
	local deadline=$((SECONDS + 30))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$CONSOLE_ADDR/-/healthy" 2>/dev/null) == 200 ]]; do
		kill -0 "$(cat "$DIR/console.pid")" 2>/dev/null || { tail -n 20 "$DIR/console.log" >&2; die "bin/query serve exited (log: .data/demo/console.log)"; }
		((SECONDS < deadline)) || die "bin/query serve did not answer on $CONSOLE_ADDR within 30s (log: .data/demo/console.log)"
		sleep 0.5
	done
}

# ---------------------------------------------------------------- the story

step "the console: bin/query serve on http://$CONSOLE_ADDR/ (log: .data/demo/console.log)"
start_console
note "open http://$CONSOLE_ADDR/ in a browser to watch the cutover while the demo runs (read-only; it shows commands, never runs them)"

step "two consumers in phase legacy (logs: .data/demo/consumer-1.log, consumer-2.log)"
start_consumer demo-consumer-1
start_consumer demo-consumer-2
deadline=$((SECONDS + 90))
until [[ $(sql "select count(*) from cutover.heartbeats where beat_at > now() - interval '10 seconds'" 2>/dev/null || echo 0) == 2 ]]; do
	for id in "${!CONSUMER_PID[@]}"; do
		kill -0 "${CONSUMER_PID[$id]}" 2>/dev/null || { tail -n 20 "$DIR/$id.log" >&2; die "$id exited"; }
	done
	((SECONDS < deadline)) || die "the consumers did not report within 90s (see .data/demo/consumer-*.log)"
	sleep 1
done
show bin/migrate status

step "history: $UNITS units, the last day, every $HISTORY_CADENCE, in ${HISTORY_SECONDS}s (a day a minute)"
scale=$((86400 / HISTORY_SECONDS))
show bin/producer simulate --units "$UNITS" --cadence "$HISTORY_CADENCE" --time-scale "$scale" --duration "${HISTORY_SECONDS}s" \
	--bad-ratio "$BAD_RATIO" --progress 15s | tee "$DIR/history.txt"
HIST_READINGS=$(figure readings "$DIR/history.txt")
HIST_BAD=$(figure "bad messages" "$DIR/history.txt")
HIST_REJECTED=$(figure "rejected samples" "$DIR/history.txt")
[[ $HIST_READINGS =~ ^[0-9]+$ ]] || die "no readings figure in the producer's summary"
note "waiting for the consumers to store the $HIST_READINGS readings"
wait_legacy "$HIST_READINGS"

HIST_FROM=$(iso $(($(date +%s) - 26 * 3600)))
SNAP1_TO=$(now_iso)
step "legacy snapshot to MinIO: everything before $SNAP1_TO"
show bin/backfill snapshot --from "$HIST_FROM" --to "$SNAP1_TO"

step "advance to dual-write (PostgreSQL required, InfluxDB repairable)"
show bin/migrate advance --execute --reason "demo: start dual-write"
DUAL_AT=$(now_iso)

step "live traffic in real time (every $LIVE_CADENCE; log: .data/demo/producer-live.log)"
LIVE_START=$(now_iso)
bin/producer simulate --units "$UNITS" --cadence "$LIVE_CADENCE" --time-scale 1 --start "$LIVE_START" \
	--bad-ratio "$BAD_RATIO" --seed 7 >"$DIR/live.txt" 2>"$DIR/producer-live.log" &
LIVE_PID=$!
before=$(legacy_count)
deadline=$((SECONDS + 60))
until (($(legacy_count) >= before + UNITS / 2)); do
	kill -0 "$LIVE_PID" 2>/dev/null || { cat "$DIR/producer-live.log" >&2; die "the live producer exited"; }
	((SECONDS < deadline)) || die "live traffic does not reach the legacy store"
	sleep 1
done
note "flowing: legacy store $(legacy_count) readings, InfluxDB $(influx_count)"

step "lose an InfluxDB window on purpose: stop it for ${OUTAGE_SECONDS}s"
show "${INFLUX_SVC[@]}" stop influxdb
OUTAGE_AT=$SECONDS
deadline=$((SECONDS + OUTAGE_SECONDS))
while ((SECONDS < deadline)); do
	sleep 5
	note "$((SECONDS - OUTAGE_AT))s: legacy store $(legacy_count) readings; gap-ledger entries $(sql "select count(*) from cutover.gap_ledger where repaired_at is null")"
done
show "${INFLUX_SVC[@]}" start influxdb
show bin/migrate status

step "live traffic for a little longer, then stop it"
sleep 10
kill -INT "$LIVE_PID"
wait "$LIVE_PID" || die "the live producer failed (see .data/demo/producer-live.log)"
LIVE_PID=
sed 's/^/      /' "$DIR/live.txt"
LIVE_READINGS=$(figure readings "$DIR/live.txt")
LIVE_BAD=$(figure "bad messages" "$DIR/live.txt")
LIVE_REJECTED=$(figure "rejected samples" "$DIR/live.txt")
PRODUCED=$((HIST_READINGS + LIVE_READINGS))
wait_legacy "$PRODUCED"

SNAP2_TO=$(now_iso)
step "second legacy snapshot: the live traffic, [$SNAP1_TO, $SNAP2_TO)"
show bin/backfill snapshot --from "$SNAP1_TO" --to "$SNAP2_TO"

step "repair the lost window: the gap ledger's windows, from the snapshots"
show_clipped 8 bin/backfill gaps --from-ledger --from "$HIST_FROM" --to "$SNAP2_TO" --window "$WINDOW"
show bin/backfill run --from-ledger --from "$HIST_FROM" --to "$SNAP2_TO" --window "$WINDOW" --execute

step "backfill the history: every window where InfluxDB has fewer readings than the snapshots"
show_clipped 8 bin/backfill gaps --from "$HIST_FROM" --to "$DUAL_AT" --window "$WINDOW"
show bin/backfill run --from "$HIST_FROM" --to "$DUAL_AT" --window "$WINDOW" --execute

step "verify: both stores, per unit and $WINDOW window, and the dashboards' queries"
show_clipped 30 bin/migrate verify --from "$HIST_FROM" --to "$(now_iso)" --window "$WINDOW"

step "the dashboards' 5-minute rollups of the whole history (backfill run already rebuilt its repaired windows)"
show bin/backfill rollup --from "$HIST_FROM" --to "$(now_iso)"

step "the read API: bin/query serve on $QUERY_ADDR (log: .data/demo/query.log)"
bin/query serve --http-addr "$QUERY_ADDR" --phase-poll 1s --shadow-rate 1 --shadow-concurrency 8 >"$DIR/query.log" 2>&1 &
QUERY_PID=$!
Q=http://$QUERY_ADDR
deadline=$((SECONDS + 30))
until curl -sf -o /dev/null "$Q/-/ready"; do
	kill -0 "$QUERY_PID" 2>/dev/null || { tail -n 20 "$DIR/query.log" >&2; die "query serve exited"; }
	((SECONDS < deadline)) || die "query serve is not ready after 30s (see .data/demo/query.log)"
	sleep 0.5
done
UNIT=$(curl -sf "$Q/v1/units" | jq -r '.units[0].unit')
API_FROM=$(iso $(($(date +%s) / 3600 * 3600 - 24 * 3600)))
API_TO=$(iso $(($(date +%s) / 3600 * 3600 - 3600)))
REQUESTS=("/v1/units/$UNIT/latest" "/v1/units/$UNIT/series?from=$API_FROM&to=$API_TO&step=1h&fields=soc_pct,power_kw"
	"/v1/fleet?from=$API_FROM&to=$API_TO&step=1h" "/v1/alarms?from=$API_FROM&to=$API_TO&limit=3")
# api TAG: each request once, headers and a clip of the body; bodies kept in .data/demo/api-TAG-N.json.
api() {
	local i=0 path
	for path in "${REQUESTS[@]}"; do
		printf '    $ curl -si %s\n' "'$Q$path'"
		curl -s -D "$DIR/api-$1-$i.headers" -o "$DIR/api-$1-$i.json" "$Q$path"
		grep -i -e '^HTTP' -e '^X-Served-By' -e '^X-Cutover-Phase' "$DIR/api-$1-$i.headers" | tr -d '\r' | sed 's/^/      /'
		printf '      %.150s…\n' "$(<"$DIR/api-$1-$i.json")"
		i=$((i + 1))
	done
}
api before

step "advance to shadow-read: PostgreSQL still serves, InfluxDB answers every request again, after the response"
show bin/migrate advance --execute --to shadow-read --reason "demo: verified"
sleep 2 # query serve rereads the phase every second
READS=$((SHADOW_READS * 6 / 5)) # a margin: a request sampled while 8 shadow reads run is not shadowed
note "a client reads: $READS requests over the fleet's units and the four requests above"
mapfile -t DEMO_UNITS < <(curl -sf "$Q/v1/units" | jq -r '.units[].unit')
for ((i = 0; i < READS; i++)); do
	case $((i % 4)) in
	0 | 1) path="/v1/units/${DEMO_UNITS[i % ${#DEMO_UNITS[@]}]}/latest" ;;
	*) path=${REQUESTS[(i / 4 * 2 + i % 4 - 2) % ${#REQUESTS[@]}]} ;; # the four requests in turn
	esac
	curl -sf -o /dev/null "$Q$path" || die "GET $path failed in shadow-read"
done
sleep 3 # the last shadow reads finish; counts reach the state store every 2 s
show bin/migrate status

step "advance to influx-primary: the gate wants $SHADOW_READS agreeing shadow reads"
show bin/migrate advance --execute --to influx-primary --reason "demo: shadow reads agree" --min-shadow-reads "$SHADOW_READS"
sleep 2
step "the same requests, now served by InfluxDB"
api after
same=1
for ((i = 0; i < ${#REQUESTS[@]}; i++)); do
	if cmp -s "$DIR/api-before-$i.json" "$DIR/api-after-$i.json"; then
		note "${REQUESTS[i]}: byte for byte the answer PostgreSQL gave"
	else
		note "${REQUESTS[i]}: DIFFERS from PostgreSQL's answer (.data/demo/api-before-$i.json, api-after-$i.json)"
		[[ $i == 0 ]] || same=0 # latest may have moved on
	fi
done
kill -TERM "$QUERY_PID" 2>/dev/null || true
wait "$QUERY_PID" 2>/dev/null || true
QUERY_PID=

# ---------------------------------------------------------------- figures

step "figures"
IN_PG=$(legacy_count)
IN_INFLUX=$(influx_count)
sleep 5 # the management API's queue figures lag by up to 5 s
DEAD=$(queue_messages "$AMQP_DEAD_QUEUE")
BAD=$((HIST_BAD + LIVE_BAD))
REJECTED=$((HIST_REJECTED + LIVE_REJECTED))
LEDGER=$(sql "select count(*) || ' entries, ' || count(repaired_at) || ' repaired' from cutover.gap_ledger")
printf '    %-28s %s\n' \
	"readings produced" "$PRODUCED (history $HIST_READINGS, live $LIVE_READINGS)" \
	"in PostgreSQL" "$IN_PG" \
	"in InfluxDB" "$IN_INFLUX" \
	"dead-lettered" "$DEAD ($BAD bad messages, $REJECTED messages with rejected samples)" \
	"gap ledger" "$LEDGER" \
	"took" "$(((SECONDS - BEGAN) / 60))m$(((SECONDS - BEGAN) % 60))s"
ok=1
[[ $IN_PG == "$PRODUCED" && $IN_INFLUX == "$PRODUCED" ]] || ok=0
[[ $DEAD == $((BAD + REJECTED)) ]] || ok=0
((same)) || ok=0

for id in "${!CONSUMER_PID[@]}"; do kill -TERM "${CONSUMER_PID[$id]}" 2>/dev/null || true; done
wait "${CONSUMER_PID[@]}" 2>/dev/null || true
CONSUMER_PID=()

cat <<EOF

Look at the data:
  InfluxDB  $INFLUX_URL  (database $DB; Flux through the v2 API)
    curl -s -XPOST '$INFLUX_URL/api/v2/query' -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' --data-binary '
      from(bucket: "$DB/autogen")
        |> range(start: -25h)
        |> filter(fn: (r) => r._measurement == "bsu" and r._field == "soc_pct")
        |> group(columns: ["site"])
        |> aggregateWindow(every: 1h, fn: mean)'
  PostgreSQL  psql '$PG_DSN' -c 'select unit, count(*) from legacy.readings group by unit order by unit limit 10'
  MinIO  $S3_ENDPOINT (minioadmin/minioadmin), s3://$S3_BUCKET/$S3_PREFIX
  RabbitMQ  $MGMT (guest/guest): dead letters in $AMQP_DEAD_QUEUE; bin/consumer dlq list
  The cutover: bin/migrate status; bin/migrate history
  The read API: source .data/demo/env && bin/query serve --http-addr $QUERY_ADDR; curl -s $Q/v1/units

The demo's consumers are stopped; the services stay up (make demo-down stops them).
$([[ ${INFLUX_SVC[0]} == env ]] && echo "The demo's own InfluxDB on $INFLUX_ADDR stays up too: scripts/demo.sh down stops it.")
Start the consumers again (phase influx-primary) with:
  source .data/demo/env && bin/consumer run --consumer-id demo-consumer-1 --http-addr 127.0.0.1:9100
EOF
if ((ok)); then
	echo "demo: done: every reading in both stores, every malformed message dead-lettered, the same API answers from both"
	echo "demo: the console stays up (scripts/demo.sh down stops it): http://$CONSOLE_ADDR/"
else
	die "the figures do not add up (see above)"
fi
