package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// endpoint is the MinIO that scripts/services.sh up starts (or S3_ENDPOINT).
func endpoint(t *testing.T) string {
	t.Helper()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "minioadmin", "AWS_SECRET_ACCESS_KEY": "minioadmin", "AWS_REGION": "us-east-1"} {
		if os.Getenv(k) == "" {
			t.Setenv(k, v)
		}
	}
	if e := os.Getenv("S3_ENDPOINT"); e != "" {
		return e
	}
	return "http://127.0.0.1:9000"
}

// Against the real MinIO: the first run creates the bucket, the second finds it.
func TestRunCreatesBucketOnce(t *testing.T) {
	ep := endpoint(t)
	bucket := fmt.Sprintf("mkbucket-test-%d", time.Now().UnixNano())
	ctx := context.Background()
	t.Cleanup(func() {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(ep); o.UsePathStyle = true })
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("delete bucket %s: %v", bucket, err)
		}
	})

	var out bytes.Buffer
	if err := run(ctx, []string{"-endpoint", ep, "-bucket", bucket}, &out); err != nil {
		t.Fatalf("first run (is MinIO up? scripts/services.sh up): %v", err)
	}
	if want := "created bucket " + bucket; !strings.Contains(out.String(), want) {
		t.Errorf("first run printed %q; want %q", out.String(), want)
	}
	out.Reset()
	if err := run(ctx, []string{"-endpoint", ep, "-bucket", bucket}, &out); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if want := "bucket " + bucket + " already exists"; !strings.Contains(out.String(), want) {
		t.Errorf("second run printed %q; want %q", out.String(), want)
	}
}

func TestRunErrors(t *testing.T) {
	t.Setenv("S3_ENDPOINT", "")
	t.Setenv("S3_BUCKET", "")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-endpoint and -bucket are required") {
		t.Fatalf("run without arguments: %v; want a usage error", err)
	}
	endpoint(t)
	err = run(context.Background(), []string{"-endpoint", "http://127.0.0.1:1", "-bucket", "b", "-timeout", "3s"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "create bucket b at http://127.0.0.1:1") {
		t.Fatalf("run against a closed port: %v; want an error naming the bucket and endpoint", err)
	}
}
