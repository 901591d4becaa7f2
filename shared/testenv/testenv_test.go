package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// Kafka gives a fresh topic with the partitions asked for, on the local
// stack's broker.
func TestKafkaTopic(t *testing.T) {
	k := Kafka(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := KafkaAdmin(ctx, k.Brokers, func(cl *kgo.Client) error {
		req := kmsg.NewPtrMetadataRequest()
		for _, n := range []string{k.Topic, k.Dead} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 || len(rt.Partitions) != 6 {
				return fmt.Errorf("topic %v: error code %d, %d partitions", rt.Topic, rt.ErrorCode, len(rt.Partitions))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
