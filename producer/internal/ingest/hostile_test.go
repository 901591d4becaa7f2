package ingest_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/producer/internal/ingest"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

// An X-Message-Id over 255 bytes, or a 300-character serial (whose derived
// id is that long), is accepted under a bounded id; the AMQP connection is
// never dropped and the normal requests around them all get 202.
func TestOverlongIDsNeverDropTheConnection(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := testenv.Name(t, "ingest")
	topo := rabbittest.Topology(t, url, "ingest")
	conn, pub := rabbittest.Publisher(t, ctx, url, n, topo, logger, prometheus.NewRegistry())
	srv := httptest.NewServer(ingest.NewHandler(pub, ingest.Options{Ready: conn.Check, ConfirmTimeout: 5 * time.Second}, logger, nil))
	defer srv.Close()

	longSerial := []byte(fmt.Sprintf(gen2, 1, 1, time.Now().UTC().Format(time.RFC3339Nano)))
	longSerial = bytes.Replace(longSerial, []byte("FP2-000001"), []byte("FP2-"+strings.Repeat("9", 296)), 1)
	for i := range 30 {
		var req *http.Request
		switch i % 3 {
		case 0:
			req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body(i+10)))
			req.Header.Set(ingest.HeaderMessageID, strings.Repeat("m", 300)+fmt.Sprint(i))
		case 1:
			req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(longSerial))
		default:
			req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body(i+10)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d (kind %d): %d %s", i, i%3, resp.StatusCode, b)
		}
	}
	if d := conn.Dials(); d != 1 {
		t.Fatalf("the AMQP connection was redialled (%d dials)", d)
	}
}
