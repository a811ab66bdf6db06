package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/server"
)

// readmeSection returns the README's section under heading (up to the next heading of the same level).
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	section, _, _ := strings.Cut(rest, "\n"+level)
	return section
}

// serveFlags lists serve's flags from its own usage text.
func serveFlags(t *testing.T) []string {
	t.Helper()
	var usage bytes.Buffer
	_, err := loadServeConfig([]string{"-h"}, &usage, func(string) (string, bool) { return "", false })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve -h: %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(usage.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("found %d flags in serve's usage, expected more:\n%s", len(names), usage.String())
	}
	return names
}

// TestREADMEDocumentsServeConfig fails when a flag of serve or a key of its configuration file is missing from
// the README's "Server configuration" section.
func TestREADMEDocumentsServeConfig(t *testing.T) {
	section := readmeSection(t, "## Server configuration")
	for _, name := range serveFlags(t) {
		if !strings.Contains(section, "`--"+name+"`") {
			t.Errorf("serve flag --%s is not documented in README.md's Server configuration", name)
		}
	}
	keys := server.FileKeys()
	for _, key := range keys {
		if !strings.Contains(section, "`"+key+"`") {
			t.Errorf("configuration key %s is not documented in README.md's Server configuration", key)
		}
	}
	if !slices.Contains(keys, "github.app.private_key") || !slices.Contains(keys, "queue.workers") {
		t.Fatalf("key walk missed nested keys: %v", keys)
	}
}
