package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/flexipack/cutover/shared/tlsconf"
)

// DefaultPartSize is the size of one multipart-upload part. Objects smaller
// than one part go up in a single PutObject.
const DefaultPartSize = 16 << 20

// minPartSize is S3's smallest part (all but the last).
const minPartSize = 5 << 20

// S3Config says where an S3 store is. Credentials and, when Region is empty,
// the region come from the standard AWS chain (environment, shared config
// and credentials files, SSO, instance roles).
type S3Config struct {
	// Endpoint overrides the AWS endpoint for MinIO and other S3-compatible
	// stores; path-style addressing is used whenever it is set.
	Endpoint string
	Bucket   string
	Region   string
	// PartSize is the multipart-upload part size (default DefaultPartSize,
	// at least 5 MiB).
	PartSize int64
	// AccessKeyID and SecretAccessKey, when both set, are the credentials;
	// otherwise the AWS chain provides them.
	AccessKeyID, SecretAccessKey string
	// CAFile, when set, is a PEM file of the certificate authorities that
	// sign the endpoint's certificate (a private MinIO's CA); the system
	// pool is used otherwise.
	CAFile string
}

// S3Store is a Store in an S3 bucket.
type S3Store struct {
	client   *s3.Client
	bucket   string
	partSize int64
}

var _ Store = (*S3Store)(nil)

// NewS3Store builds an S3 client from the standard AWS configuration chain
// and cfg's overrides.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	switch {
	case cfg.AccessKeyID != "" && cfg.SecretAccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	case cfg.AccessKeyID != "" || cfg.SecretAccessKey != "":
		return nil, errors.New("s3: give both the access key id and the secret access key, or neither (AWS credential chain)")
	}
	if cfg.CAFile != "" {
		if _, err := tlsconf.CertPool(cfg.CAFile); err != nil { // a clear error for a bad file
			return nil, fmt.Errorf("s3: %w", err)
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3: CA file: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	return NewS3StoreFromClient(client, cfg.Bucket, cfg.PartSize), nil
}

// NewS3StoreFromClient wraps an existing client (tests use testenv's).
func NewS3StoreFromClient(client *s3.Client, bucket string, partSize int64) *S3Store {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	if partSize < minPartSize {
		partSize = minPartSize
	}
	return &S3Store{client: client, bucket: bucket, partSize: partSize}
}

// String names the store for logs.
func (s *S3Store) String() string { return "s3://" + s.bucket }

// List returns the keys that start with prefix, sorted.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get opens the object at key.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	// The part's sha256 is checked against the manifest, so S3-compatible
	// stores that return no response checksum need no SDK log line for it.
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)},
		func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		var nsk *types.NoSuchKey
		var api smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &api) && api.ErrorCode() == "NotFound") {
			return nil, 0, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return out.Body, size, nil
}

// Put uploads r to key: one PutObject when it fits in one part, otherwise a
// multipart upload with one part in memory at a time (aborted on failure, so
// no partial object appears).
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) error {
	buf := make([]byte, s.partSize)
	n, err := io.ReadFull(r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key),
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("put s3://%s/%s: read: %w", s.bucket, key, err)
	}
	return s.multipart(ctx, key, buf, r)
}

func (s *S3Store) multipart(ctx context.Context, key string, first []byte, r io.Reader) (err error) {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: start multipart upload: %w", s.bucket, key, err)
	}
	defer func() {
		if err != nil {
			// A fresh context: the upload must be aborted even when ctx ended.
			_, _ = s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId,
			})
		}
	}()
	var parts []types.CompletedPart
	buf, n := first, len(first)
	for num := int32(1); ; num++ {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(num), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return fmt.Errorf("put s3://%s/%s: upload part %d: %w", s.bucket, key, num, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		n, err = io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("put s3://%s/%s: read: %w", s.bucket, key, err)
		}
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: complete multipart upload: %w", s.bucket, key, err)
	}
	return nil
}
