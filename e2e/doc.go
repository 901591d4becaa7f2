// Package e2e holds the end-to-end test of the whole cutover story: the four
// real binaries (producer, consumer, backfill, migrate) against real
// services, with faults injected, asserting exact counts at the end.
//
// The test carries the build tag e2e, so 'go test ./...' compiles nothing
// here; run it with
//
//	go test -v -count=1 -tags e2e -timeout 15m ./e2e/
//
// (make test-e2e). It restarts the shared RabbitMQ once (rabbitmqctl
// stop_app / start_app), so it must run alone, after the other tests; its
// PostgreSQL and InfluxDB are private instances it stops and starts itself.
package e2e
