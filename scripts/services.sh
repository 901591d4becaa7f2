#!/usr/bin/env bash
# services.sh — the local service stack every binary and test talks to, on
# loopback, from nothing.
#
#   scripts/services.sh up              install, build, start and wait for everything (idempotent)
#   scripts/services.sh down            stop what this script started (InfluxDB, MinIO, Kafka, Alertmanager)
#   scripts/services.sh status          one line per service; exit 1 if any is unhealthy
#   scripts/services.sh env             export lines for the binaries and tests (eval "$(...)")
#   scripts/services.sh start SERVICE   start one of: influxdb, minio, kafka, alertmanager
#   scripts/services.sh stop SERVICE    stop one of: influxdb, minio, kafka, alertmanager
#
# Services:
#   RabbitMQ 127.0.0.1:5672 (guest/guest) with the management API on :15672;
#     Debian's rabbitmq-server, reused when running, else `rabbitmq-server -detached`.
#   PostgreSQL 127.0.0.1:5432, user postgres, trust auth, database bsu;
#     Debian's postgresql, reused when running, else pg_ctlcluster start.
#   InfluxDB 1.8.3 http://127.0.0.1:8086 (Flux on), database telemetry;
#     built once with go install into GOPATH/bin, run from .data/influxdb,
#     with GOGC=400 (INFLUXD_GOGC; see INFLUXD_GOGC below).
#   MinIO http://127.0.0.1:9000 (minioadmin/minioadmin), bucket bsu-snapshots;
#     built once with go install into GOPATH/bin, run from .data/minio.
#   Kafka protocol 127.0.0.1:9092: scripts/kafkabroker, franz-go's kfake, an
#     IN-MEMORY test broker (topics telemetry and telemetry.dead, 6 partitions;
#     nothing survives its restart); built into .data/bin. docker-compose.yml
#     runs a real Kafka instead. `env` keeps BUS=rabbitmq.
#   Alertmanager v0.28.1 http://127.0.0.1:9093 (API v2, clustering off);
#     built once with go install into GOPATH/bin, run from .data/alertmanager.
#
# Data and logs live under .data/ at the repository root (git-ignored);
# logs in .data/log/. The system RabbitMQ and PostgreSQL are never stopped.
# Pid files of the daemons this script starts live in one machine-wide
# folder (SERVICES_RUN_DIR, default /tmp/flexipack-cutover-services) because
# the ports are machine-wide: any checkout's `down` or `stop` can stop what
# any checkout's `up` started, and nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${SERVICES_DATA_DIR:-$ROOT/.data}
LOG=$DATA/log
RUN=${SERVICES_RUN_DIR:-/tmp/flexipack-cutover-services}

INFLUXD_PKG=github.com/influxdata/influxdb/cmd/influxd@v1.8.3
# MinIO no longer tags semver releases; this is what @latest resolved to when
# the stack was set up. Pinned so every machine builds the same server.
MINIO_PKG=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
# v0.32 and later do not build with go install (their UI assets are missing
# from the module); v0.28.1 does.
ALERTMANAGER_PKG=github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1
# influxd's Go garbage collector. Its live heap is small (tens of MB) and a
# write stream allocates fast, so at Go's default (100) it collected several
# times a second: a fifth of its CPU under 3,000-5,000 readings/s. At 400,
# in the query benchmark's ingest rows, influxd took 0.43 instead of 0.55
# cores (200 units, 2 runs each; 0.37 against 0.44 at full size) and the
# reads' p50 fell by a quarter; p95 and p99 went from better to no better
# between runs. The heap grows by a few hundred MB.
INFLUXD_GOGC=${INFLUXD_GOGC:-400}

AMQP_HOST=127.0.0.1 AMQP_PORT=5672 RABBIT_MGMT=http://127.0.0.1:15672
PG_HOST=127.0.0.1 PG_PORT=5432 PG_DB=bsu
# The two daemons this script runs can move (for trying the script beside a
# running stack); everything the project reads follows via `env`.
INFLUX_HTTP=${SERVICES_INFLUX_ADDR:-127.0.0.1:8086} INFLUX_RPC=${SERVICES_INFLUX_RPC_ADDR:-127.0.0.1:8088} INFLUX_DB=telemetry
MINIO_ADDR=${SERVICES_MINIO_ADDR:-127.0.0.1:9000} MINIO_CONSOLE=${SERVICES_MINIO_CONSOLE_ADDR:-127.0.0.1:9001}
MINIO_USER=minioadmin MINIO_PASSWORD=minioadmin
S3_BUCKET_NAME=bsu-snapshots
AM_ADDR=${SERVICES_ALERTMANAGER_ADDR:-127.0.0.1:9093}

# Bounded waits, in seconds.
WAIT_RABBIT=${WAIT_RABBIT:-120}
WAIT_PG=${WAIT_PG:-60}
WAIT_INFLUX=${WAIT_INFLUX:-90}
WAIT_MINIO=${WAIT_MINIO:-90}
WAIT_KAFKA=${WAIT_KAFKA:-60}
KAFKA_ADDR=${SERVICES_KAFKA_ADDR:-127.0.0.1:9092}
WAIT_ALERTMANAGER=${WAIT_ALERTMANAGER:-60}

say() { printf 'services: %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE]: fail, naming the log and showing its last lines.
die() {
	printf 'services: ERROR: %s\n' "$1" >&2
	if [[ -n ${2:-} ]]; then
		printf 'services: log: %s (last 20 lines follow)\n' "$2" >&2
		tail -n 20 "$2" 2>/dev/null | sed 's/^/    | /' >&2 || true
	fi
	exit 1
}

SUDO=
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO=sudo; fi

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }

gobin() {
	local b
	b=$(go env GOBIN)
	[[ -n $b ]] || b=$(go env GOPATH)/bin
	printf '%s\n' "$b"
}

# find_bin NAME: the binary from PATH or GOPATH/bin, or nothing.
find_bin() {
	if command -v "$1" >/dev/null; then command -v "$1"; return; fi
	local b
	b=$(gobin)/$1
	if [[ -x $b ]]; then printf '%s\n' "$b"; fi
}

APT_UPDATED=
# apt_install PKG...: install Debian packages without letting their
# maintainer scripts start services (this script starts them itself).
apt_install() {
	[[ $(id -u) -eq 0 || -n $SUDO ]] || die "$* missing and not root: run 'apt-get install -y $*' as root"
	mkdir -p "$LOG"
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod +x "$policy"
		made_policy=1
	fi
	if [[ -z $APT_UPDATED ]]; then
		say "apt-get update (to install $*)"
		$SUDO apt-get update -q >>"$LOG/apt.log" 2>&1 || die "apt-get update failed" "$LOG/apt.log"
		APT_UPDATED=1
	fi
	say "apt-get install $*"
	if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$LOG/apt.log" 2>&1; then
		[[ -z $made_policy ]] || $SUDO rm -f "$policy"
		die "apt-get install $* failed" "$LOG/apt.log"
	fi
	[[ -z $made_policy ]] || $SUDO rm -f "$policy"
}

# go_install NAME PKG@VERSION: build a server once into GOPATH/bin, showing progress.
go_install() {
	local name=$1 pkg=$2 log=$LOG/build-$1.log
	command -v go >/dev/null || die "go is not on PATH; install Go first (see README)"
	say "building $name with 'go install $pkg' (first run only; minutes on 2 cores); log: $log"
	local start=$SECONDS
	(cd "$ROOT" && go install "$pkg") >"$log" 2>&1 &
	local pid=$! next=30
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS - start >= next)); then
			say "  still building $name ($((SECONDS - start))s so far)"
			next=$((next + 30))
		fi
		sleep 1
	done
	wait "$pid" || die "go install $pkg failed" "$log"
	say "built $name in $((SECONDS - start))s: $(gobin)/$name"
}

# go_bin NAME PKG@VERSION: the binary NAME from PATH or GOPATH/bin, built
# with go_install first when it is missing.
go_bin() {
	local bin
	bin=$(find_bin "$1")
	if [[ -z $bin ]]; then
		go_install "$1" "$2"
		bin=$(gobin)/$1
	fi
	printf '%s\n' "$bin"
}

# ---------------------------------------------------------------- pid files

pidfile() { printf '%s/%s.pid\n' "$RUN" "$1"; }

# owned_pid SERVICE BINARY: the pid this script recorded for SERVICE, if that
# process is still alive and is still BINARY (guards against pid reuse).
owned_pid() {
	local f pid
	f=$(pidfile "$1")
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
	printf '%s\n' "$pid"
}

# held_pid SERVICE BINARY ADDR WHAT: the pid of our SERVICE (still BINARY)
# holding ADDR; dies when a process this script did not start holds it
# (one that WHAT, e.g. "is not a healthy MinIO").
held_pid() {
	owned_pid "$1" "$2" ||
		die "$1: $3 is taken by a process this script did not start, and it $4"
}

# start_daemon SERVICE LOGFILE CMD...: start CMD detached, record its pid.
start_daemon() {
	local svc=$1 log=$2
	shift 2
	mkdir -p "$RUN" "$(dirname "$log")"
	printf '\n==== %s starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
	setsid "$@" >>"$log" 2>&1 </dev/null &
	local pid=$!
	printf '%s\n' "$pid" >"$(pidfile "$svc")"
	printf '%s\n' "$DATA" >"$RUN/$svc.datadir"
}

# stop_daemon SERVICE BINARY: stop a daemon this script started.
stop_daemon() {
	local svc=$1 bin=$2 pid
	if ! pid=$(owned_pid "$svc" "$bin"); then
		rm -f "$(pidfile "$svc")" "$RUN/$svc.datadir"
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			say "$svc (pid $pid) did not stop within 30s of SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.2
	done
	rm -f "$(pidfile "$svc")" "$RUN/$svc.datadir"
	say "stopped $svc (pid $pid)"
}

# wait_for DESCRIPTION SECONDS LOGFILE PID CHECK...: poll CHECK until it
# succeeds, failing when the deadline passes or the process PID (if not
# empty) has died.
wait_for() {
	local what=$1 secs=$2 log=$3 pid=$4
	shift 4
	local deadline=$((SECONDS + secs))
	until "$@"; do
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			die "$what: the process (pid $pid) exited while starting" "$log"
		fi
		((SECONDS < deadline)) || die "$what: not healthy within ${secs}s" "$log"
		sleep 0.5
	done
}

# ---------------------------------------------------------------- RabbitMQ

rabbit_amqp_up() { port_open "$AMQP_HOST" "$AMQP_PORT"; }
rabbit_mgmt_up() { [[ $(http_code -u guest:guest "$RABBIT_MGMT/api/overview") == 200 ]]; }
rabbit_healthy() { rabbit_amqp_up && rabbit_mgmt_up; }

rabbit_up() {
	if rabbit_healthy; then return; fi
	local log=$LOG/rabbitmq-start.log
	if ! rabbit_amqp_up; then
		if ! command -v rabbitmq-server >/dev/null || ! command -v rabbitmqctl >/dev/null; then
			apt_install rabbitmq-server
			rabbit_write_config
		fi
		say "starting RabbitMQ (rabbitmq-server -detached); logs: /var/log/rabbitmq/"
		$SUDO rabbitmq-server -detached >>"$log" 2>&1 || die "rabbitmq-server -detached failed" "$log"
		wait_for "rabbitmq (amqp://$AMQP_HOST:$AMQP_PORT)" "$WAIT_RABBIT" /var/log/rabbitmq/rabbit@localhost.log "" rabbit_amqp_up
	fi
	if ! rabbit_mgmt_up; then
		say "enabling rabbitmq_management"
		$SUDO rabbitmq-plugins enable rabbitmq_management >>"$log" 2>&1 ||
			die "rabbitmq-plugins enable rabbitmq_management failed" "$log"
		wait_for "rabbitmq management API ($RABBIT_MGMT/api/overview)" "$WAIT_RABBIT" "$log" "" rabbit_mgmt_up
	fi
}

# rabbit_write_config: after a fresh install, a loopback-only node named
# rabbit@localhost, so it starts whatever the machine's hostname resolves to.
# Settings already present are left alone.
rabbit_write_config() {
	$SUDO mkdir -p /etc/rabbitmq
	local env=/etc/rabbitmq/rabbitmq-env.conf conf=/etc/rabbitmq/rabbitmq.conf
	if ! grep -qs '^NODENAME=' "$env"; then
		printf '%s\n' '# added by scripts/services.sh' 'NODENAME=rabbit@localhost' 'ERL_EPMD_ADDRESS=127.0.0.1' \
			'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' | $SUDO tee -a "$env" >/dev/null
	fi
	if ! grep -qs '^listeners\.tcp' "$conf"; then
		printf '%s\n' '# added by scripts/services.sh' 'listeners.tcp.local = 127.0.0.1:5672' | $SUDO tee -a "$conf" >/dev/null
	fi
	if ! grep -qs '^management\.tcp' "$conf"; then
		printf '%s\n' 'management.tcp.ip = 127.0.0.1' | $SUDO tee -a "$conf" >/dev/null
	fi
}

# ---------------------------------------------------------------- PostgreSQL

psql_q() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -X -q -At "$@"; }
pg_accepting() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
pg_login() { psql_q -d postgres -c 'select 1' >/dev/null 2>&1; }
pg_healthy() { command -v psql >/dev/null && psql_q -d "$PG_DB" -c 'select 1' >/dev/null 2>&1; }
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

pg_up() {
	if pg_healthy; then return; fi
	if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
		if port_open "$PG_HOST" "$PG_PORT"; then
			apt_install postgresql-client
		else
			apt_install postgresql
		fi
	fi
	if ! pg_accepting; then
		local ver
		ver=$(pg_version)
		if [[ -z $ver ]] || [[ ! -d /etc/postgresql/$ver/main ]]; then
			command -v pg_createcluster >/dev/null || apt_install postgresql
			ver=$(pg_version)
			if [[ -z $ver ]] || [[ ! -d /etc/postgresql/$ver/main ]]; then
				ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
				say "creating PostgreSQL cluster $ver/main"
				$SUDO pg_createcluster "$ver" main >>"$LOG/postgresql-start.log" 2>&1 ||
					die "pg_createcluster $ver main failed" "$LOG/postgresql-start.log"
			fi
		fi
		say "starting PostgreSQL $ver/main (pg_ctlcluster); log: /var/log/postgresql/postgresql-$ver-main.log"
		$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start >>"$LOG/postgresql-start.log" 2>&1 ||
			die "pg_ctlcluster $ver main start failed" "/var/log/postgresql/postgresql-$ver-main.log"
		wait_for "postgresql ($PG_HOST:$PG_PORT)" "$WAIT_PG" "/var/log/postgresql/postgresql-$ver-main.log" "" pg_accepting
	fi
	if ! pg_login; then
		pg_trust_loopback
	fi
	if [[ -z $(psql_q -d postgres -c "select 1 from pg_database where datname = '$PG_DB'") ]]; then
		say "creating PostgreSQL database $PG_DB"
		psql_q -d postgres -c "create database $PG_DB" || die "create database $PG_DB failed"
	fi
	pg_healthy || die "postgresql: cannot connect to database $PG_DB as postgres on $PG_HOST:$PG_PORT"
}

# pg_trust_loopback: Debian's default is password auth over TCP; the project
# connects as postgres over loopback without a password.
pg_trust_loopback() {
	local ver hba
	ver=$(pg_version)
	hba=/etc/postgresql/$ver/main/pg_hba.conf
	[[ -n $ver && -f $hba ]] ||
		die "postgresql on $PG_HOST:$PG_PORT refuses user postgres without a password, and no Debian pg_hba.conf to fix; allow trust auth for 127.0.0.1"
	say "allowing trust auth for 127.0.0.1 in $hba"
	local tmp
	tmp=$(mktemp)
	{
		printf '# added by scripts/services.sh: local development, loopback only\n'
		printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
		$SUDO cat "$hba"
	} >"$tmp"
	$SUDO cp "$tmp" "$hba"
	rm -f "$tmp"
	$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >>"$LOG/postgresql-start.log" 2>&1 || true
	local deadline=$((SECONDS + 10))
	until pg_login; do
		((SECONDS < deadline)) || die "postgresql still refuses user postgres on $PG_HOST:$PG_PORT after enabling trust auth in $hba"
		sleep 0.5
	done
}

# ---------------------------------------------------------------- InfluxDB

influx_ping() { [[ $(http_code "http://$INFLUX_HTTP/ping") == 204 ]]; }
influx_flux() {
	curl -sf --max-time 10 -XPOST "http://$INFLUX_HTTP/api/v2/query" \
		-H 'Accept: application/csv' -H 'Content-Type: application/vnd.flux' \
		--data-binary 'buckets() |> limit(n: 1)' >/dev/null 2>&1
}
influx_healthy() { influx_ping && influx_flux; }

influx_write_config() {
	local dir=$DATA/influxdb
	mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
	cat >"$dir/influxdb.conf" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
reporting-disabled = true
bind-address = "$INFLUX_RPC"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  cache-max-memory-size = "2g"
  # Tests and benchmarks read back what they wrote seconds before: a short
  # cold duration moves it from the write cache into TSM files as soon as
  # writes pause, so reads of a past day are measured as production reads
  # them (the 10m default leaves everything in the cache, which every query
  # must sort and deduplicate).
  cache-snapshot-write-cold-duration = "5s"
  max-series-per-database = 0
  max-values-per-tag = 0
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "$INFLUX_HTTP"
  auth-enabled = false
  flux-enabled = true
  log-enabled = false
  write-tracing = false
  max-body-size = 0
  max-concurrent-write-limit = 0

[logging]
  format = "logfmt"
  level = "info"
EOF
}

influx_up() {
	local log=$LOG/influxdb.log pid=
	if ! influx_healthy; then
		if port_open "${INFLUX_HTTP%:*}" "${INFLUX_HTTP#*:}"; then
			# Something answers but is not healthy yet: ours still starting, or a stranger.
			pid=$(held_pid influxdb influxd "$INFLUX_HTTP" "is not a healthy InfluxDB 1.8 with Flux") || exit 1
		else
			local bin
			bin=$(go_bin influxd "$INFLUXD_PKG") || exit 1
			influx_write_config
			say "starting InfluxDB ($bin) on $INFLUX_HTTP; log: $log"
			start_daemon influxdb "$log" env GOGC="$INFLUXD_GOGC" "$bin" run -config "$DATA/influxdb/influxdb.conf"
			pid=$(<"$(pidfile influxdb)")
		fi
		wait_for "influxdb (http://$INFLUX_HTTP/ping)" "$WAIT_INFLUX" "$log" "$pid" influx_ping
		wait_for "influxdb Flux (http://$INFLUX_HTTP/api/v2/query)" "$WAIT_INFLUX" "$log" "$pid" influx_flux
	fi
	local out
	out=$(curl -sS --max-time 10 -XPOST "http://$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE $INFLUX_DB" 2>&1) ||
		die "influxdb: CREATE DATABASE $INFLUX_DB failed: $out" "$log"
	[[ $out != *'"error"'* ]] || die "influxdb: CREATE DATABASE $INFLUX_DB failed: $out" "$log"
	# The 5-minute rollups the fleet dashboards read for long ranges come from
	# `backfill rollup --follow` (shared/rollup, docs/dashboards.md), not from
	# continuous queries: the same job runs on InfluxDB 1.x, 2.x and 3.x.
}

# ---------------------------------------------------------------- MinIO

minio_healthy() { [[ $(http_code "http://$MINIO_ADDR/minio/health/live") == 200 ]]; }

minio_up() {
	local log=$LOG/minio.log pid=
	if ! minio_healthy; then
		if port_open "${MINIO_ADDR%:*}" "${MINIO_ADDR#*:}"; then
			pid=$(held_pid minio minio "$MINIO_ADDR" "is not a healthy MinIO") || exit 1
		else
			local bin
			bin=$(go_bin minio "$MINIO_PKG") || exit 1
			mkdir -p "$DATA/minio"
			say "starting MinIO ($bin) on $MINIO_ADDR; log: $log"
			MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD \
				MINIO_BROWSER_REDIRECT=off MINIO_UPDATE=off \
				start_daemon minio "$log" "$bin" server "$DATA/minio" \
				--address "$MINIO_ADDR" --console-address "$MINIO_CONSOLE" --quiet
			pid=$(<"$(pidfile minio)")
		fi
		wait_for "minio (http://$MINIO_ADDR/minio/health/live)" "$WAIT_MINIO" "$log" "$pid" minio_healthy
	fi
	minio_bucket
}

# minio_bucket: create the snapshot bucket with the project's own Go helper
# (there is no mc here); built once, then only re-linked when it changed.
minio_bucket() {
	local log=$LOG/mkbucket.log
	# Our own MinIO keeps each bucket as a folder of its data dir: no need
	# to build and ask when it is there.
	if owned_pid minio minio >/dev/null && [[ $(cat "$RUN/minio.datadir" 2>/dev/null) == "$DATA" && -d $DATA/minio/$S3_BUCKET_NAME ]]; then
		return
	fi
	mkdir -p "$DATA/bin"
	(cd "$ROOT" && go build -o "$DATA/bin/mkbucket" ./scripts/mkbucket) >"$log" 2>&1 ||
		die "building scripts/mkbucket failed" "$log"
	AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD AWS_REGION=us-east-1 \
		"$DATA/bin/mkbucket" -endpoint "http://$MINIO_ADDR" -bucket "$S3_BUCKET_NAME" >>"$log" 2>&1 ||
		die "minio: creating bucket $S3_BUCKET_NAME failed" "$log"
}

# ---------------------------------------------------------------- Kafka (kfake)

kafka_bin() { printf '%s/bin/kafkabroker\n' "$DATA"; }

# kafka_healthy: one real metadata request (the broker must parse and answer
# a Kafka request, not just accept a connection).
kafka_healthy() { [[ -x $(kafka_bin) ]] && "$(kafka_bin)" -check "$KAFKA_ADDR" -timeout 3s >/dev/null 2>&1; }

kafka_build() {
	local log=$LOG/build-kafkabroker.log
	mkdir -p "$DATA/bin"
	(cd "$ROOT" && go build -o "$(kafka_bin)" ./scripts/kafkabroker) >"$log" 2>&1 ||
		die "building scripts/kafkabroker failed" "$log"
}

kafka_up() {
	local log=$LOG/kafka.log pid=
	kafka_build
	if kafka_healthy; then return; fi
	if port_open "${KAFKA_ADDR%:*}" "${KAFKA_ADDR#*:}"; then
		pid=$(held_pid kafka kafkabroker "$KAFKA_ADDR" "does not answer a Kafka metadata request") || exit 1
	else
		say "starting the Kafka test broker (kfake, in memory) on $KAFKA_ADDR; log: $log"
		start_daemon kafka "$log" "$(kafka_bin)" -addr "$KAFKA_ADDR"
		pid=$(<"$(pidfile kafka)")
	fi
	wait_for "kafka (metadata request to $KAFKA_ADDR)" "$WAIT_KAFKA" "$log" "$pid" kafka_healthy
}

kafka_status() {
	if kafka_healthy; then
		line kafka healthy "$KAFKA_ADDR, in-memory kfake test broker ($(owner_note kafka kafkabroker))"
	else
		line kafka UNHEALTHY "$KAFKA_ADDR does not answer a metadata request; log: $LOG/kafka.log"
		return 1
	fi
}

# ---------------------------------------------------------------- Alertmanager

am_healthy() { [[ $(http_code "http://$AM_ADDR/-/ready") == 200 ]]; }

# am_write_config: one route to a receiver without integrations. The alert
# service's tests and the e2e read what arrived through the API
# (GET /api/v2/alerts); an operator adds real receivers here.
am_write_config() {
	local dir=$DATA/alertmanager
	mkdir -p "$dir/data"
	cat >"$dir/alertmanager.yml" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
route:
  receiver: default
  group_by: [alertname, site]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: default
EOF
}

am_up() {
	local log=$LOG/alertmanager.log pid=
	if am_healthy; then return; fi
	if port_open "${AM_ADDR%:*}" "${AM_ADDR#*:}"; then
		pid=$(held_pid alertmanager alertmanager "$AM_ADDR" "is not a ready Alertmanager") || exit 1
	else
		local bin
		bin=$(go_bin alertmanager "$ALERTMANAGER_PKG") || exit 1
		am_write_config
		say "starting Alertmanager ($bin) on $AM_ADDR; log: $log"
		start_daemon alertmanager "$log" "$bin" --config.file="$DATA/alertmanager/alertmanager.yml" \
			--storage.path="$DATA/alertmanager/data" --web.listen-address="$AM_ADDR" --cluster.listen-address=
		pid=$(<"$(pidfile alertmanager)")
	fi
	wait_for "alertmanager (http://$AM_ADDR/-/ready)" "$WAIT_ALERTMANAGER" "$log" "$pid" am_healthy
}

# ---------------------------------------------------------------- commands

cmd_env() {
	cat <<EOF
export AMQP_URL=amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/
export AMQP_MANAGEMENT_URL=http://guest:guest@${RABBIT_MGMT#http://}
export PG_DSN='postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable'
export STATE_DSN='postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable'
export INFLUX_URL=http://$INFLUX_HTTP
export INFLUX_TOKEN=
export INFLUX_ORG=flexipack
export INFLUX_BUCKET=$INFLUX_DB/autogen
export S3_ENDPOINT=http://$MINIO_ADDR
export S3_BUCKET=$S3_BUCKET_NAME
export S3_PREFIX=snapshots
export AWS_ACCESS_KEY_ID=$MINIO_USER
export AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD
export AWS_REGION=us-east-1
export KAFKA_BROKERS=$KAFKA_ADDR
export BUS=rabbitmq
export ALERTMANAGER_URL=http://$AM_ADDR
EOF
}

owner_note() {
	local pid
	if pid=$(owned_pid "$1" "$2"); then
		printf 'pid %s, started by services.sh, data %s' "$pid" "$(cat "$RUN/$1.datadir" 2>/dev/null || echo '?')"
	else
		printf 'not started by services.sh'
	fi
}

line() { printf '%-12s %-9s %s\n' "$1" "$2" "$3"; }

cmd_status() {
	local bad=0
	if rabbit_healthy; then
		line rabbitmq healthy "amqp://$AMQP_HOST:$AMQP_PORT, management $RABBIT_MGMT"
	else
		bad=1
		line rabbitmq UNHEALTHY "amqp://$AMQP_HOST:$AMQP_PORT $(rabbit_amqp_up && echo 'up' || echo 'down'), management $RABBIT_MGMT $(rabbit_mgmt_up && echo 'up' || echo 'down'); logs: /var/log/rabbitmq/"
	fi
	if pg_healthy; then
		line postgresql healthy "postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB"
	else
		bad=1
		line postgresql UNHEALTHY "postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB not reachable; logs: /var/log/postgresql/"
	fi
	if influx_healthy; then
		line influxdb healthy "http://$INFLUX_HTTP, Flux on ($(owner_note influxdb influxd))"
	else
		bad=1
		line influxdb UNHEALTHY "http://$INFLUX_HTTP: /ping $(influx_ping && echo ok || echo failed), Flux $(influx_flux && echo ok || echo failed); log: $LOG/influxdb.log"
	fi
	if command -v chromium >/dev/null; then
		line chromium installed "$(command -v chromium) (the console's browser tests)"
	else
		bad=1
		line chromium MISSING "run scripts/services.sh up (installs Debian's chromium)"
	fi
	if minio_healthy; then
		line minio healthy "http://$MINIO_ADDR, console http://$MINIO_CONSOLE ($(owner_note minio minio))"
	else
		bad=1
		line minio UNHEALTHY "http://$MINIO_ADDR/minio/health/live failed; log: $LOG/minio.log"
	fi
	kafka_status || bad=1
	if am_healthy; then
		line alertmanager healthy "http://$AM_ADDR, API v2 ($(owner_note alertmanager alertmanager))"
	else
		bad=1
		line alertmanager UNHEALTHY "http://$AM_ADDR/-/ready failed; log: $LOG/alertmanager.log"
	fi
	return "$bad"
}

# chromium_up: Debian's Chromium, which the console's browser tests drive
# headless (query/internal/console); installed only when missing.
chromium_up() {
	if command -v chromium >/dev/null; then
		return
	fi
	apt_install chromium
	command -v chromium >/dev/null || die "chromium is still not on PATH after apt-get install chromium" "$LOG/apt.log"
	say "chromium installed: $(chromium --version 2>/dev/null || echo unknown version)"
}

cmd_up() {
	local start=$SECONDS
	mkdir -p "$LOG" "$RUN"
	command -v curl >/dev/null || apt_install curl ca-certificates
	rabbit_up
	pg_up
	influx_up
	minio_up
	kafka_up
	am_up
	chromium_up
	say "all services healthy in $((SECONDS - start))s"
}

cmd_down() {
	stop_daemon influxdb influxd || say "influxdb: nothing started by services.sh is running"
	stop_daemon minio minio || say "minio: nothing started by services.sh is running"
	stop_daemon kafka kafkabroker || say "kafka: nothing started by services.sh is running"
	stop_daemon alertmanager alertmanager || say "alertmanager: nothing started by services.sh is running"
	say "left the system RabbitMQ and PostgreSQL running (never stopped by this script)"
}

usage() {
	sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	[[ $# -ge 1 ]] || usage
	case $1 in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env) cmd_env ;;
	start | stop)
		[[ $# -eq 2 ]] || usage
		mkdir -p "$LOG" "$RUN"
		case $1:$2 in
		start:influxdb) influx_up ;;
		start:minio) minio_up ;;
		start:kafka) kafka_up ;;
		stop:kafka) stop_daemon kafka kafkabroker || die "kafka: no Kafka test broker started by services.sh is running (pid file $(pidfile kafka))" ;;
		start:alertmanager) am_up ;;
		stop:alertmanager) stop_daemon alertmanager alertmanager || die "alertmanager: no Alertmanager started by services.sh is running (pid file $(pidfile alertmanager))" ;;
		stop:influxdb) stop_daemon influxdb influxd || die "influxdb: no InfluxDB started by services.sh is running (pid file $(pidfile influxdb))" ;;
		stop:minio) stop_daemon minio minio || die "minio: no MinIO started by services.sh is running (pid file $(pidfile minio))" ;;
		*) die "$1 $2: unknown service; want influxdb, minio, kafka or alertmanager" ;;
		esac
		;;
	-h | --help | help) usage ;;
	*) printf 'services: unknown command %q\n' "$1" >&2; usage ;;
	esac
}

main "$@"
