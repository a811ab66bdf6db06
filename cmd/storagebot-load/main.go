// Command storagebot-load drives `storagebot serve` with signed webhook deliveries over loopback and reports
// what a user of the App feels: how fast a delivery is acknowledged, how fast a pull request gets its
// storage-policy verdict, how many deliveries per second are taken, how many GitHub API calls a verdict
// costs, and the server's peak memory.
//
// It starts the fake GitHub (internal/githubfake) in this process with a generated storage of --versions
// versions, pre-records the deliveries of a realistic mix (pull requests opened and pushed to, comments,
// pings), starts the storagebot binary as a child process against the fake, and sends the deliveries either
// in an open loop at --rate deliveries per second or in a closed loop of --concurrency clients. In the open
// loop every latency is measured from the time the delivery was scheduled to be sent, not the time it was
// sent, so a driver or server that falls behind shows up in the figures instead of silently sending less
// (coordinated omission). Everything listens on 127.0.0.1; the run is bounded by --deliveries and --timeout.
//
// Usage:
//
//	storagebot-load --deliveries N (--concurrency C | --rate R) --versions V [--format text|json]
//	                [--storagebot PATH] [--mix PR:COMMENT:PING] [--timeout D]
//
// With --format json it prints one object: {"deliveries", "concurrency", "rate", "versions", "ack_p50_ms",
// "ack_p99_ms", "deliveries_per_s", "verdict_p50_ms", "verdict_p99_ms", "api_calls_per_verdict",
// "peak_rss_mb"}, followed by details scripts may ignore ("accepted", "refused", "verdicts", ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the driver's settings, from its flags.
type options struct {
	deliveries  int
	concurrency int
	rate        float64
	versions    int
	format      string
	binary      string
	mix         mix
	timeout     time.Duration
}

// mix is the relative weight of each kind of delivery.
type mix struct{ pr, comment, ping int }

func parseMix(s string) (mix, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return mix{}, fmt.Errorf("--mix %q: want three weights PR:COMMENT:PING, e.g. 4:4:2", s)
	}
	var w [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return mix{}, fmt.Errorf("--mix %q: weight %q is not a whole number ≥ 0", s, p)
		}
		w[i] = n
	}
	if w[0]+w[1]+w[2] == 0 {
		return mix{}, fmt.Errorf("--mix %q: at least one weight must be above 0", s)
	}
	return mix{pr: w[0], comment: w[1], ping: w[2]}, nil
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("storagebot-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.deliveries, "deliveries", 0, "how many deliveries to send (required)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "closed loop: this many clients, each sending its next delivery when the last is answered")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: deliveries per second on a fixed schedule, whatever the answers")
	fs.IntVar(&o.versions, "versions", 2000, "versions in the generated storage (10 per package)")
	fs.StringVar(&o.format, "format", "text", "output: text or json")
	fs.StringVar(&o.binary, "storagebot", "", "the storagebot binary to start (default: storagebot next to this program, else on PATH)")
	mixFlag := fs.String("mix", "4:4:2", "weights of pull_request (opened or synchronize, each a new verdict), issue_comment and ping deliveries")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run, setup included")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if o.deliveries <= 0 {
		errs = append(errs, errors.New("--deliveries must be above 0"))
	}
	if (o.concurrency > 0) == (o.rate > 0) {
		errs = append(errs, errors.New("give exactly one of --concurrency C (closed loop) or --rate R (open loop), above 0"))
	}
	if o.concurrency < 0 || o.rate < 0 {
		errs = append(errs, errors.New("--concurrency and --rate must not be negative"))
	}
	if o.versions < 10 {
		errs = append(errs, errors.New("--versions must be at least 10 (one package of 10 versions)"))
	}
	if o.format != "text" && o.format != "json" {
		errs = append(errs, fmt.Errorf("--format %q: want text or json", o.format))
	}
	if o.timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be above 0"))
	}
	m, err := parseMix(*mixFlag)
	if err != nil {
		errs = append(errs, err)
	}
	o.mix = m
	return o, errors.Join(errs...)
}

// findBinary locates the storagebot binary: the flag, else next to this program, else on PATH.
func findBinary(flagValue string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("--storagebot %s: %w", flagValue, err)
		}
		return flagValue, nil
	}
	if self, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(self), "storagebot")
		if st, err := os.Stat(sibling); err == nil && !st.IsDir() {
			return sibling, nil
		}
	}
	if p, err := exec.LookPath("storagebot"); err == nil {
		return p, nil
	}
	return "", errors.New("no storagebot binary next to this program nor on PATH: build both with " +
		"`go build -o bin/ ./cmd/storagebot ./cmd/storagebot-load`, or pass --storagebot PATH")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "storagebot-load: %v\n", err)
		return 2
	}
	binary, err := findBinary(o.binary)
	if err != nil {
		fmt.Fprintf(stderr, "storagebot-load: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := drive(ctx, o, binary, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "storagebot-load: %v\n", err)
		return 1
	}
	if err := res.write(stdout, o.format); err != nil {
		fmt.Fprintf(stderr, "storagebot-load: write the result: %v\n", err)
		return 1
	}
	return 0
}
