package main

import (
	"context"
	"io"
	"os"
	"runtime/debug"

	"github.com/storagebot/storagebot/internal/localcheck"
)

// checkGCPercent is the garbage collector's GOGC for `storagebot check`: a one-shot process that allocates
// a few MB for a small change would otherwise run a collection (its mark workers, stop-the-world phases and
// the page faults of its metadata) just before exiting; at 400 the first collection comes at a 16 MB heap,
// and a large change still collects, holding at most five times its live data.
const checkGCPercent = 400

// tuneCheckGC sets checkGCPercent unless GOGC is set in the environment, which is then obeyed.
func tuneCheckGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(checkGCPercent)
	}
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return localcheck.Run(ctx, args, stdout, stderr)
}
