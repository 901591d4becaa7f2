#!/bin/sh
# InfluxDB 2.x (docker-compose.yml): maps database "telemetry", retention
# policy "autogen" to the setup bucket, so that InfluxQL — every read of the
# binaries and the dashboards — finds it (2.x answers InfluxQL only through
# DBRP mappings). The influxdb image runs this once, after its initial setup
# (DOCKER_INFLUXDB_INIT_MODE=setup).
set -eu
id=$(influx bucket list --org "${DOCKER_INFLUXDB_INIT_ORG}" --token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}" \
	--name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx v1 dbrp create --org "${DOCKER_INFLUXDB_INIT_ORG}" --token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}" \
	--db telemetry --rp autogen --bucket-id "$id" --default
echo "create-dbrp.sh: database telemetry / rp autogen -> bucket ${DOCKER_INFLUXDB_INIT_BUCKET} ($id)"
