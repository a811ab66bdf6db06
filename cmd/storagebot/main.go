// Command storagebot is the storagebot GitHub App: `serve` runs the App, `check` runs the storage policy on a
// local repository, `version` prints build information.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `storagebot guards a package storage repository: PR checks, promotions, removal follow-ups.

Usage:
  storagebot serve [flags]    run the GitHub App (webhooks on /api/github/hook, /healthz, /readyz, /metrics)
  storagebot check [flags]    run the storage policy on a local git repository (see 'storagebot check -h')
  storagebot version          print version, commit and Go version

Run 'storagebot serve -h' for the server's flags.
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		tuneCheckGC() // here, not in run, which tests call in their own process
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "storagebot: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
