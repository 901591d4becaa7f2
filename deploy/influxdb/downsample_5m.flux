// InfluxDB 2.x task: the downsampled series the fleet dashboards read, the
// same measurements, tags and fields as the 1.8 continuous queries in
// continuous_queries.influxql (read that file for what each field means):
//
//   bsu_5m       one point per unit per 5 minutes (tags unit, site, model)
//   bsu_site_5m  one point per site per 5 minutes (tag site)
//
// Created at first start by init/create-tasks.sh (docker-compose.yml mounts
// it into /docker-entrypoint-initdb.d), or by hand:
//
//   influx task create --org flexipack --file deploy/influxdb/downsample_5m.flux
//
// Every 5 minutes it recomputes the last hour of complete 5-minute windows,
// so late readings (buffered gen-2 samples, consumer lag) are folded in.
// Backfilled history older than that needs a one-off run over its range: see
// docs/dashboards.md, "Downsampling backfilled history".
//
// The lines defining bucket, start and stop, and the final to(), are
// replaced by deploy/influxdb's test, which runs the rest of this script on
// InfluxDB 1.8 and compares its output with the continuous queries'.
import "date"

option task = {name: "downsample_5m", every: 5m, offset: 1m}

bucket = "telemetry"
stop = date.truncate(t: now(), unit: 5m)
start = date.sub(d: 1h, from: stop)

// window5m aggregates into 5-minute windows stamped at their start, as
// InfluxQL's GROUP BY time(5m) does.
window5m = (tables=<-, fn) =>
    tables
        |> aggregateWindow(every: 5m, fn: fn, createEmpty: false, timeSrc: "_start")

// bySite regroups per-unit series into one series per site and field.
bySite = (tables=<-) => tables |> group(columns: ["_measurement", "_field", "site"])

// siteOnly keeps only the columns a per-site point has (selectors such as
// max keep the unit and model of the row they pick, which to() would write
// as tags).
siteOnly = (tables=<-) =>
    tables |> keep(columns: ["_start", "_stop", "_time", "_value", "_measurement", "_field", "site"])

raw =
    from(bucket: bucket)
        |> range(start: start, stop: stop)
        |> filter(fn: (r) => r._measurement == "bsu")

unitMeans =
    raw
        |> filter(fn: (r) => r._field =~ /^(soc_pct|soh_pct|voltage_v|current_a|power_kw)$/)
        |> window5m(fn: mean)
unitReadings =
    raw
        |> filter(fn: (r) => r._field == "schema")
        |> window5m(fn: count)
temps = raw |> filter(fn: (r) => r._field =~ /^temp_.+_c$/)
alarms = raw |> filter(fn: (r) => r._field == "alarm_count")
soc =
    raw
        |> filter(fn: (r) => r._field == "soc_pct")
        |> bySite()

unit5m =
    union(
        tables: [
            unitMeans |> map(fn: (r) => ({r with _field: "mean_" + r._field})),
            temps |> window5m(fn: max) |> map(fn: (r) => ({r with _field: "max_" + r._field})),
            unitReadings |> set(key: "_field", value: "readings"),
            alarms |> window5m(fn: sum) |> set(key: "_field", value: "alarms"),
        ],
    )
        |> set(key: "_measurement", value: "bsu_5m")

site5m =
    union(
        tables: [
            soc |> window5m(fn: sum) |> set(key: "_field", value: "soc_pct_sum"),
            soc |> window5m(fn: count) |> set(key: "_field", value: "soc_pct_count"),
            temps
                |> bySite()
                |> window5m(fn: max)
                |> siteOnly()
                |> map(fn: (r) => ({r with _field: "max_" + r._field})),
            raw
                |> filter(fn: (r) => r._field == "schema")
                |> bySite()
                |> window5m(fn: count)
                |> set(key: "_field", value: "readings"),
            alarms |> bySite() |> window5m(fn: sum) |> set(key: "_field", value: "alarms"),
            unitMeans
                |> filter(fn: (r) => r._field == "power_kw")
                |> bySite()
                |> window5m(fn: sum)
                |> set(key: "_field", value: "power_kw"),
            unitReadings |> bySite() |> window5m(fn: count) |> set(key: "_field", value: "units"),
        ],
    )
        |> siteOnly()
        |> set(key: "_measurement", value: "bsu_site_5m")

union(tables: [unit5m, site5m])
    |> to(bucket: bucket)
