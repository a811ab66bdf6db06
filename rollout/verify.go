package rollout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPRegistry polls a package registry over HTTP with bounded exponential backoff.
type HTTPRegistry struct {
	Client *http.Client
	// FirstDelay and MaxDelay bound the backoff between polls; 0 means 1s and 30s.
	FirstDelay, MaxDelay time.Duration
}

var _ Registry = (*HTTPRegistry)(nil)

// WaitServed polls <base>/package/<name>/<version>/ for every version until each answers 200 or deadline
// passes.
func (h *HTTPRegistry) WaitServed(ctx context.Context, base string, versions []Version, deadline time.Time) error {
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	delay, maxDelay := h.FirstDelay, h.MaxDelay
	if delay <= 0 {
		delay = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	missing := append([]Version(nil), versions...)
	lastProblem := map[Version]string{}
	for {
		var still []Version
		for _, v := range missing {
			ok, problem := served(ctx, client, base, v)
			if !ok {
				still = append(still, v)
				lastProblem[v] = problem
			}
		}
		missing = still
		if len(missing) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			var parts []string
			for _, v := range missing {
				parts = append(parts, fmt.Sprintf("%s (%s)", v, lastProblem[v]))
			}
			return fmt.Errorf("%s does not serve %s after waiting until %s; check that the image holds them and the registry runs it",
				base, strings.Join(parts, ", "), deadline.UTC().Format(time.RFC3339))
		}
		wait := time.NewTimer(min(delay, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
		delay = min(delay*2, maxDelay)
	}
}

// served asks the registry for one version; the string says what it answered otherwise.
func served(ctx context.Context, client *http.Client, base string, v Version) (bool, string) {
	u := strings.TrimSuffix(base, "/") + "/package/" + url.PathEscape(v.Package) + "/" + url.PathEscape(v.Version) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, resp.Status
}
