package testkit

import (
	"encoding/json"
	"strings"
	"testing"
)

// DuplicateJSONKey returns a key that appears twice in the top-level object of a JSON log line, or "".
// encoding/json keeps the last of two equal keys without a word, so a logger that adds a field its caller
// already set goes unnoticed unless the line is read token by token.
func DuplicateJSONKey(t testing.TB, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // the opening brace
		t.Fatalf("log line is not JSON: %v: %s", err, line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
	}
	return ""
}
