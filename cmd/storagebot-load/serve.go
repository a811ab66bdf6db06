package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// verdictLogMessage is the line serve logs, with the delivery's ID, once a storage-policy run is completed
// on GitHub: the moment a user sees the verdict.
const verdictLogMessage = "storage-policy completed"

// child is a `storagebot serve` process on a loopback port, against the fake.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	mu       sync.Mutex
	verdicts map[string]time.Time // delivery ID → when its verdict was logged
	tail     []string             // the last log lines, for error messages
	notify   chan struct{}        // signalled on every verdict
}

// startServe starts binary as `serve` on a free loopback port, configured through the environment exactly
// as a deployment would be, and waits until it answers /readyz.
func startServe(ctx context.Context, binary string, f *fixture) (*child, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()

	// The reconcile interval is long and the grace default: the run's PRs are the webhooks' to check, and a
	// periodic reconcile would add work the deliveries did not cause.
	cmd := exec.Command(binary, "serve", "--addr", addr, "--log-format", "json", "--log-level", "info",
		"--reconcile-interval", "1h")
	cmd.Env = append(childEnv(os.Environ()),
		"GITHUB_APP_INTEGRATION_ID="+strconv.FormatInt(f.fake.AppID(), 10),
		"GITHUB_APP_PRIVATE_KEY="+string(f.fake.PrivateKeyPEM()),
		"GITHUB_APP_WEBHOOK_SECRET="+f.fake.WebhookSecret(),
		"GITHUB_V3_API_URL="+f.fake.URL(),
		"GITHUB_WEB_URL="+f.fake.WebURL(),
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("pipe serve's log: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", binary, err)
	}
	c := &child{cmd: cmd, addr: addr, done: make(chan struct{}), verdicts: map[string]time.Time{}, notify: make(chan struct{}, 1)}
	logDone := make(chan struct{})
	go func() { defer close(logDone); c.readLog(stderr) }()
	go func() { <-logDone; c.err = cmd.Wait(); close(c.done) }()

	ready := time.NewTicker(20 * time.Millisecond)
	defer ready.Stop()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("serve exited before it was ready (%v); its last log lines:\n%s", c.err, c.lastLines())
		case <-deadline:
			c.stop()
			return nil, fmt.Errorf("serve on %s not ready within 30s; its last log lines:\n%s", addr, c.lastLines())
		case <-ctx.Done():
			c.stop()
			return nil, fmt.Errorf("wait for serve to be ready: %w", ctx.Err())
		case <-ready.C:
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
	}
}

// childEnv is the environment without anything that configures storagebot or its GitHub App, so the
// driver's settings are the only ones the child sees.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "GITHUB_") || strings.HasPrefix(kv, "STORAGEBOT_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// readLog timestamps verdict lines as they arrive and keeps the last lines for error messages. It reads
// until serve closes its stderr, so serve never blocks on a full pipe.
func (c *child) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	needle := []byte(`"` + verdictLogMessage + `"`)
	for sc.Scan() {
		line := sc.Bytes()
		now := time.Now()
		if bytes.Contains(line, needle) {
			var entry struct {
				DeliveryID string `json:"github_delivery_id"`
				Message    string `json:"message"`
			}
			if json.Unmarshal(line, &entry) == nil && entry.Message == verdictLogMessage && entry.DeliveryID != "" {
				c.mu.Lock()
				if _, seen := c.verdicts[entry.DeliveryID]; !seen {
					c.verdicts[entry.DeliveryID] = now
				}
				c.mu.Unlock()
				select {
				case c.notify <- struct{}{}:
				default:
				}
			}
		}
		c.mu.Lock()
		c.tail = append(c.tail, string(line))
		if len(c.tail) > 40 {
			c.tail = c.tail[len(c.tail)-40:]
		}
		c.mu.Unlock()
	}
}

func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// verdictTimes is a copy of the verdicts seen so far.
func (c *child) verdictTimes() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Time, len(c.verdicts))
	for k, v := range c.verdicts {
		out[k] = v
	}
	return out
}

// waitVerdicts waits until every ID in want has its verdict, the context ends, or serve exits.
func (c *child) waitVerdicts(ctx context.Context, want []string) {
	for {
		c.mu.Lock()
		missing := 0
		for _, id := range want {
			if _, ok := c.verdicts[id]; !ok {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-c.notify:
		case <-c.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// peakRSSBytes is the child's peak resident set (VmHWM in /proc/<pid>/status; Linux only).
func (c *child) peakRSSBytes() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read serve's peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("read serve's peak RSS: no VmHWM in /proc status")
}

// stop sends SIGTERM (serve drains its queue), and kills it if it has not exited within 30s.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("serve did not stop within 30s of SIGTERM and was killed")
	}
	var exit *exec.ExitError
	if c.err != nil && !errors.As(c.err, &exit) {
		return fmt.Errorf("wait for serve: %w", c.err)
	}
	if c.err != nil {
		return fmt.Errorf("serve exited with %v; its last log lines:\n%s", c.err, c.lastLines())
	}
	return nil
}
