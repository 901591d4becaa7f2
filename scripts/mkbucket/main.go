// Command mkbucket creates an S3 bucket if it does not exist yet, against
// MinIO or any S3-compatible store (path-style addressing). scripts/services.sh
// uses it because the local stack has no mc client. Credentials and region come
// from the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION).
//
//	mkbucket -endpoint http://127.0.0.1:9000 -bucket bsu-snapshots
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mkbucket", flag.ContinueOnError)
	endpoint := fs.String("endpoint", os.Getenv("S3_ENDPOINT"), "S3 endpoint URL (default $S3_ENDPOINT)")
	bucket := fs.String("bucket", os.Getenv("S3_BUCKET"), "bucket to create (default $S3_BUCKET)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || *bucket == "" {
		return errors.New("-endpoint and -bucket are required (or S3_ENDPOINT and S3_BUCKET)")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	created, err := ensureBucket(ctx, *endpoint, *bucket)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "created bucket %s at %s\n", *bucket, *endpoint)
	} else {
		fmt.Fprintf(out, "bucket %s already exists at %s\n", *bucket, *endpoint)
	}
	return nil
}

// ensureBucket creates bucket at endpoint unless it exists, and reports
// whether it created it.
func ensureBucket(ctx context.Context, endpoint, bucket string) (bool, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return false, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return false, nil
	}
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create bucket %s at %s: %w", bucket, endpoint, err)
	}
	return true, nil
}
