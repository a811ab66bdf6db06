package appmanifest

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the permissions and events table in README.md from the code")

const (
	readmePath  = "../../README.md"
	tableBegin  = "<!-- permissions and events: generated from internal/appmanifest by `go test ./internal/appmanifest -run TestREADMETable -update` -->\n"
	tableFinish = "<!-- end of the generated permissions and events -->\n"
)

// TestREADMETable holds the README's permissions and events table to the one the code uses; run it with
// -update to regenerate the README's copy.
func TestREADMETable(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	before, rest, ok := strings.Cut(readme, tableBegin)
	current, after, ok2 := strings.Cut(rest, tableFinish)
	if !ok || !ok2 {
		t.Fatalf("README.md lacks the generated table's markers:\n%s...\n%s", tableBegin, tableFinish)
	}
	want := MarkdownTable()
	if current == want {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(before+tableBegin+want+tableFinish+after), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md's permissions and events table rewritten")
		return
	}
	t.Errorf("README.md's permissions and events table differs from internal/appmanifest (-code +README); "+
		"regenerate it with go test ./internal/appmanifest -run TestREADMETable -update:\n%s", cmp.Diff(want, current))
}
