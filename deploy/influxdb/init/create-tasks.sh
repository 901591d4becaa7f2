#!/bin/sh
# InfluxDB 2.x (docker-compose.yml): creates the downsample_5m task the fleet
# dashboards' long ranges read. The influxdb image runs this once, after its
# initial setup (DOCKER_INFLUXDB_INIT_MODE=setup), with INFLUX_HOST pointing
# at the server it set up. The task writes into the setup bucket, so its
# "bucket = ..." line is rewritten to DOCKER_INFLUXDB_INIT_BUCKET.
set -eu
src=/etc/flexipack/downsample_5m.flux
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed "s|^bucket = .*|bucket = \"${DOCKER_INFLUXDB_INIT_BUCKET}\"|" "$src" >"$tmp"
influx task create \
	--org "${DOCKER_INFLUXDB_INIT_ORG}" \
	--token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}" \
	--file "$tmp"
echo "create-tasks.sh: created task downsample_5m on bucket ${DOCKER_INFLUXDB_INIT_BUCKET}"
