// Package testkit holds the helpers that tests of several packages share: a log buffer safe for concurrent
// writers, a check for JSON log lines that repeat a key, and an installation client built the way serve
// builds it. Only tests and other test-helper packages import it; production code never does.
package testkit
