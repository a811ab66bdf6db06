// Command storagebot is the storagebot GitHub App: `serve` runs the App, `check` runs the storage policy on a
// local repository, `version` prints build information.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "usage: storagebot serve|check|version")
	os.Exit(2)
}
