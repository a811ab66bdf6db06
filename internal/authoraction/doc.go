// Package authoraction tests the storage-policy GitHub Action for package authors
// (.github/actions/storage-policy): the Go tool ignores directories starting with a dot, so its test lives
// here. The test runs the action's step the way the runner does — its env expressions evaluated against a
// pull_request event, GITHUB_* variables as Actions sets them — on a checkout made the way actions/checkout
// makes one, of a generated storage repository served over git's file:// transport.
package authoraction
