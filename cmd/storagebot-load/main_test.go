package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// buildStoragebot builds the storagebot binary the driver starts, from this module's source.
func buildStoragebot(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the storagebot binary")
	}
	out := filepath.Join(t.TempDir(), "storagebot")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds the binary under test: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", out, "github.com/storagebot/storagebot/cmd/storagebot")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/storagebot: %v\n%s", err, msg)
	}
	return out
}

// contractKeys are the fields scripts read from --format json.
var contractKeys = []string{"deliveries", "concurrency", "rate", "versions", "ack_p50_ms", "ack_p99_ms",
	"deliveries_per_s", "verdict_p50_ms", "verdict_p99_ms", "api_calls_per_verdict", "peak_rss_mb"}

// TestDriverJSONContract runs the driver for a few hundred deliveries in each loop against the real binary
// and checks the JSON it prints: one object with every contract field, the figures consistent with each
// other, and every pull_request delivery answered by a verdict.
func TestDriverJSONContract(t *testing.T) {
	binary := buildStoragebot(t)
	tests := []struct {
		name string
		args []string
		// prs is how many of the deliveries are pull_request ones with the default 4:4:2 mix.
		prs                       int
		wantRate, wantConcurrency float64
	}{
		{name: "open loop", args: []string{"--deliveries", "300", "--rate", "250", "--versions", "100"}, prs: 120, wantRate: 250},
		{name: "closed loop", args: []string{"--deliveries", "200", "--concurrency", "8", "--versions", "50"}, prs: 80, wantConcurrency: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{}, tc.args...), "--format", "json", "--storagebot", binary, "--timeout", "4m")
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("storagebot-load %s = exit %d; stderr:\n%s", strings.Join(args, " "), code, stderr.String())
			}
			if n := strings.Count(strings.TrimSpace(stdout.String()), "\n"); n != 0 {
				t.Fatalf("stdout holds %d lines, want one JSON object:\n%s", n+1, stdout.String())
			}
			var raw map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout.String())
			}
			var missing []string
			for _, k := range contractKeys {
				if _, ok := raw[k].(float64); !ok {
					missing = append(missing, k)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Fatalf("JSON lacks the numeric contract fields %v:\n%s", missing, stdout.String())
			}
			var r result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", stdout.String())
			type echo struct {
				Deliveries, Versions int
				Rate, Concurrency    float64
			}
			wantEcho := echo{Deliveries: atoi(t, tc.args[1]), Versions: atoi(t, tc.args[5]), Rate: tc.wantRate, Concurrency: tc.wantConcurrency}
			gotEcho := echo{Deliveries: r.Deliveries, Versions: r.Versions, Rate: r.Rate, Concurrency: float64(r.Concurrency)}
			if diff := cmp.Diff(wantEcho, gotEcho); diff != "" {
				t.Errorf("settings echoed (-want +got):\n%s", diff)
			}
			if r.Accepted+r.Refused+r.Failed != r.Deliveries {
				t.Errorf("accepted %d + refused %d + failed %d != %d deliveries", r.Accepted, r.Refused, r.Failed, r.Deliveries)
			}
			if r.Accepted != r.Deliveries {
				t.Errorf("%d of %d deliveries accepted; the default queue holds far more than this run sends", r.Accepted, r.Deliveries)
			}
			if r.Verdicts != tc.prs || r.VerdictsMissing != 0 {
				t.Errorf("verdicts %d, missing %d; want %d pull_request deliveries each answered by a verdict", r.Verdicts, r.VerdictsMissing, tc.prs)
			}
			if !(0 < r.AckP50Ms && r.AckP50Ms <= r.AckP99Ms && r.AckP99Ms <= r.AckMaxMs) {
				t.Errorf("ack percentiles p50 %v, p99 %v, max %v are not 0 < p50 ≤ p99 ≤ max", r.AckP50Ms, r.AckP99Ms, r.AckMaxMs)
			}
			if !(0 < r.VerdictP50Ms && r.VerdictP50Ms <= r.VerdictP99Ms) {
				t.Errorf("verdict percentiles p50 %v, p99 %v are not 0 < p50 ≤ p99", r.VerdictP50Ms, r.VerdictP99Ms)
			}
			// A verdict needs at least the check run's create and completion on GitHub.
			if r.APICallsPerVerdict < 2 || r.DeliveriesPerS <= 0 {
				t.Errorf("api_calls_per_verdict %v (want ≥ 2), deliveries_per_s %v (want > 0)", r.APICallsPerVerdict, r.DeliveriesPerS)
			}
			if runtime.GOOS == "linux" && r.PeakRSSMB <= 0 {
				t.Errorf("peak_rss_mb %v; serve's VmHWM should be readable on Linux", r.PeakRSSMB)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return n
}

// TestDriverUsage checks that a bad command line is refused with exit 2 and a message naming the flag,
// before anything is started.
func TestDriverUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "both loops", args: []string{"--deliveries", "10", "--rate", "5", "--concurrency", "2"}, want: "exactly one of --concurrency"},
		{name: "no loop", args: []string{"--deliveries", "10"}, want: "exactly one of --concurrency"},
		{name: "no deliveries", args: []string{"--rate", "5"}, want: "--deliveries must be above 0"},
		{name: "bad format", args: []string{"--deliveries", "1", "--rate", "5", "--format", "yaml"}, want: `--format "yaml"`},
		{name: "bad mix", args: []string{"--deliveries", "1", "--rate", "5", "--mix", "1:x:1"}, want: `weight "x"`},
		{name: "tiny storage", args: []string{"--deliveries", "1", "--rate", "5", "--versions", "3"}, want: "--versions must be at least 10"},
		{name: "missing binary", args: []string{"--deliveries", "1", "--rate", "5", "--storagebot", "/nonexistent/storagebot"}, want: "--storagebot /nonexistent/storagebot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
				t.Fatalf("stderr %q should name %q, stdout %q should be empty", stderr.String(), tc.want, stdout.String())
			}
		})
	}
}

// TestSchedule checks the mix is spread evenly: every window of one round holds each kind by its weight.
func TestSchedule(t *testing.T) {
	got := schedule(20, mix{pr: 4, comment: 4, ping: 2})
	for start := 0; start+10 <= len(got); start += 10 {
		count := map[kind]int{}
		for _, k := range got[start : start+10] {
			count[k]++
		}
		if diff := cmp.Diff(map[kind]int{kindPR: 4, kindComment: 4, kindPing: 2}, count); diff != "" {
			t.Errorf("deliveries %d–%d (-want +got):\n%s", start, start+9, diff)
		}
	}
	if only := schedule(5, mix{ping: 1}); !cmp.Equal(only, []kind{kindPing, kindPing, kindPing, kindPing, kindPing}) {
		t.Errorf("schedule with pings only = %v", only)
	}
}
