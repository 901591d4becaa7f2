package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaTopic is a fresh topic (and its dead-letter topic) on the broker of
// KAFKA_BROKERS.
type KafkaTopic struct {
	Brokers []string
	Topic   string // the telemetry topic
	Dead    string // Topic + ".dead"
	Group   string // a consumer group name unique to the test
}

// Kafka checks that the Kafka broker of KAFKA_BROKERS (default
// 127.0.0.1:9092, the local stack's kfake broker) answers a metadata request,
// creates a topic unique to the test with the given partitions and its
// ".dead" topic, and deletes both when the test ends.
func Kafka(t testing.TB, partitions int32) KafkaTopic {
	t.Helper()
	brokers := strings.Split(env("KAFKA_BROKERS", "127.0.0.1:9092"), ",")
	name := strings.ReplaceAll(Name(t, "t"), "_", "-")
	k := KafkaTopic{Brokers: brokers, Topic: name, Dead: name + ".dead", Group: name + "-g"}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := KafkaAdmin(ctx, brokers, func(cl *kgo.Client) error {
		return createTopics(ctx, cl, partitions, k.Topic, k.Dead)
	}); err != nil {
		t.Fatalf("testenv: Kafka at %s: %v; %s", strings.Join(brokers, ","), err, hint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := KafkaAdmin(ctx, brokers, func(cl *kgo.Client) error {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{k.Topic, k.Dead}
			for _, n := range req.TopicNames {
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
			_, err := req.RequestWith(ctx, cl)
			return err
		}); err != nil {
			t.Logf("testenv: delete topics %s: %v", k.Topic, err)
		}
	})
	return k
}

// KafkaAdmin runs fn with a franz-go client on brokers, closing it after.
func KafkaAdmin(ctx context.Context, brokers []string, fn func(*kgo.Client) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		return fmt.Errorf("metadata request: %w", err)
	}
	return fn(cl)
}

func createTopics(ctx context.Context, cl *kgo.Client, partitions int32, names ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, n := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, partitions, -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && err != kerr.TopicAlreadyExists {
			return fmt.Errorf("create topic %s: %w", rt.Topic, err)
		}
	}
	return nil
}
