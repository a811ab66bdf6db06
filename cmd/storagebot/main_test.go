package main

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets TestChaos run eight groups of seeds at once unless -parallel is given: its groups share
// nothing (each has its own fake GitHub and replicas) and spend most of their time waiting on timers, so the
// default of one per CPU would make the 200 seeds of `go test ./...` several times slower. No other test of
// this package runs in parallel.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
