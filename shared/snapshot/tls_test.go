package snapshot_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// A private MinIO serving HTTPS with a test CA: the S3 store reaches it with
// CAFile and the access key fields, and is refused without the CA (the
// system roots do not know it) or with the wrong secret key.
func TestS3StoreOverTLS(t *testing.T) {
	ca := tlstest.New(t)
	m := testenv.StartMinioTLS(t, ca)
	ctx := testenv.Context(t, time.Minute)
	cfg := snapshot.S3Config{Endpoint: m.Endpoint, Bucket: "tls-snapshots", Region: "us-east-1",
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, CAFile: ca.CAFile}
	st, err := snapshot.NewS3Store(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.New(s3.Options{BaseEndpoint: aws.String(m.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}})
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		t.Fatalf("create bucket over TLS: %v", err)
	}
	if err := st.Put(ctx, "a/b", bytes.NewReader([]byte("over tls"))); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	rc, _, err := st.Get(ctx, "a/b")
	if err != nil {
		t.Fatalf("get over TLS: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "over tls" {
		t.Fatalf("got %q", b)
	}

	for name, c := range map[string]snapshot.S3Config{
		"no CA file":   {Endpoint: m.Endpoint, Bucket: cfg.Bucket, Region: cfg.Region, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey},
		"wrong secret": {Endpoint: m.Endpoint, Bucket: cfg.Bucket, Region: cfg.Region, AccessKeyID: m.AccessKey, SecretAccessKey: "nope", CAFile: ca.CAFile},
	} {
		st, err := snapshot.NewS3Store(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err = st.Get(gctx, "a/b")
		cancel()
		if err == nil {
			t.Errorf("%s: read the object", name)
		}
	}
	if _, err := snapshot.NewS3Store(ctx, snapshot.S3Config{Bucket: "x", AccessKeyID: "only-the-id"}); err == nil {
		t.Error("an access key id without its secret was accepted")
	}
}
