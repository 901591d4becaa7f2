package rabbit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/redact"
)

// mgmtClient is shared by the management calls; they are rare and small.
var mgmtClient = &http.Client{Timeout: 10 * time.Second}

// mgmtRequest calls the management API at mgmtURL (credentials in the URL's
// user info, e.g. http://guest:guest@127.0.0.1:15672) and decodes JSON into
// out when out is not nil.
func mgmtRequest(ctx context.Context, method, mgmtURL, path string, out any) error {
	base, err := url.Parse(mgmtURL)
	if err != nil {
		return fmt.Errorf("management url %s: %w", redact.URL(mgmtURL), redact.URLError(err))
	}
	user := base.User
	base.User = nil
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base.String(), "/")+path, nil)
	if err != nil {
		return fmt.Errorf("management request %s %s: %w", method, path, err)
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	resp, err := mgmtClient.Do(req)
	if err != nil {
		return fmt.Errorf("management %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("management %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("management %s %s: decode: %w", method, path, err)
	}
	return nil
}

// QueueDepth returns the messages ready plus unacknowledged in queue, as the
// management API reports them (its statistics lag by up to the broker's
// collect_statistics_interval, 5 s by default). vhost "" means "/".
func QueueDepth(ctx context.Context, mgmtURL, vhost, queue string) (int64, error) {
	if vhost == "" {
		vhost = "/"
	}
	var q struct {
		Messages               *int64 `json:"messages"`
		MessagesReady          int64  `json:"messages_ready"`
		MessagesUnacknowledged int64  `json:"messages_unacknowledged"`
	}
	path := "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue)
	if err := mgmtRequest(ctx, http.MethodGet, mgmtURL, path, &q); err != nil {
		return 0, fmt.Errorf("queue depth of %q: %w", queue, err)
	}
	if q.Messages != nil {
		return *q.Messages, nil
	}
	// A queue with no statistics yet reports neither field.
	return q.MessagesReady + q.MessagesUnacknowledged, nil
}

// connectionInfo is what CloseConnections reads of /api/connections.
type connectionInfo struct {
	Name             string `json:"name"`
	UserProvidedName string `json:"user_provided_name"`
	ClientProperties struct {
		ConnectionName string `json:"connection_name"`
	} `json:"client_properties"`
}

// CloseConnections closes, through the management API, every connection
// whose connection_name starts with prefix, and returns how many it closed.
// Tests use it to force reconnects without disturbing other connections.
// An empty prefix is refused: it would close everyone's connections. A
// connection appears in the API only after the broker's first statistics
// emission, so a caller waiting for one polls.
func CloseConnections(ctx context.Context, mgmtURL, prefix string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("close connections: empty prefix would match every connection")
	}
	var conns []connectionInfo
	if err := mgmtRequest(ctx, http.MethodGet, mgmtURL, "/api/connections?columns=name,user_provided_name,client_properties", &conns); err != nil {
		return 0, fmt.Errorf("list connections: %w", err)
	}
	n := 0
	for _, c := range conns {
		name := c.ClientProperties.ConnectionName
		if name == "" {
			name = c.UserProvidedName
		}
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		err := mgmtRequest(ctx, http.MethodDelete, mgmtURL, "/api/connections/"+url.PathEscape(c.Name), nil)
		if err != nil {
			if strings.Contains(err.Error(), "404") {
				continue // already gone
			}
			return n, fmt.Errorf("close connection %q (%s): %w", name, c.Name, err)
		}
		n++
	}
	return n, nil
}
