package testenv

import (
	"context"
	"testing"
	"time"
)

// These tests check the helpers against the real services; they fail when a
// service is missing, which is the point.
func TestPostgresAndInflux(t *testing.T) {
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pingPG(ctx, dsn); err != nil {
		t.Fatalf("fresh database not reachable: %v", err)
	}
	db := Influx(t)
	if err := InfluxQL(db.URL, "SHOW MEASUREMENTS ON "+db.DB); err != nil {
		t.Fatalf("fresh influx database: %v", err)
	}
	_ = RabbitURL(t)
}

func TestPrivateInstancesRestart(t *testing.T) {
	pg := StartPostgres(t)
	inf := StartInfluxd(t)
	pg.Stop()
	inf.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := pingPG(ctx, pg.DSN); err == nil {
		t.Fatal("postgres still answers after Stop")
	}
	if err := httpOK(inf.URL + "/ping"); err == nil {
		t.Fatal("influxd still answers after Stop")
	}
	pg.Start()
	inf.Start()
	if err := httpOK(inf.URL + "/ping"); err != nil {
		t.Fatalf("influxd after restart: %v", err)
	}
}
