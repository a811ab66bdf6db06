package testkit

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testHelperPackages are the packages that exist for tests. They may import "testing" and build fakes, so
// production code must not link them.
var testHelperPackages = map[string]bool{
	"github.com/storagebot/storagebot/internal/testkit":           true,
	"github.com/storagebot/storagebot/internal/browsertest":       true,
	"github.com/storagebot/storagebot/internal/status/statustest": true,
	"github.com/storagebot/storagebot/rollout/rollouttest":        true,
}

// TestOnlyTestsImportTestHelpers: a file outside _test.go that imports a test-helper package must itself be
// test-helper code, which shows by importing "testing" (production code never does).
func TestOnlyTestsImportTestHelpers(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		imports := map[string]bool{}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			imports[p] = true
		}
		for p := range imports {
			if testHelperPackages[p] && !imports["testing"] {
				t.Errorf("%s imports the test helper %s but is not test code", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d Go files, expected the whole module", checked)
	}
}
