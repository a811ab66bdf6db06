package appmanifest

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// TestManifestMatchesTable holds deploy/app-manifest.yml to the table: the permissions and events GitHub is
// asked for are exactly the ones the code uses.
func TestManifestMatchesTable(t *testing.T) {
	data, err := os.ReadFile("../../deploy/app-manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		DefaultPermissions map[string]string `yaml:"default_permissions"`
		DefaultEvents      []string          `yaml:"default_events"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("parse the manifest: %v", err)
	}
	if diff := cmp.Diff(PermissionMap(), m.DefaultPermissions); diff != "" {
		t.Errorf("default_permissions differ from the table (-table +manifest):\n%s", diff)
	}
	if diff := cmp.Diff(SubscribedEvents(), m.DefaultEvents); diff != "" {
		t.Errorf("default_events differ from the table (-table +manifest, both sorted):\n%s", diff)
	}
}

// TestNewManifestMatchesFile: the manifest the setup page posts is deploy/app-manifest.yml with the URLs of
// this server, so registering by hand and through the setup page ask GitHub for the same App.
func TestNewManifestMatchesFile(t *testing.T) {
	data, err := os.ReadFile("../../deploy/app-manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file Manifest
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("parse the manifest: %v", err)
	}
	got := NewManifest(file.Name, file.HookAttributes.URL, "")
	got.Description = ""
	got.HookAttributes.Active = false // GitHub's default; the file leaves it out
	if diff := cmp.Diff(file, got); diff != "" {
		t.Errorf("NewManifest differs from deploy/app-manifest.yml (-file +NewManifest):\n%s", diff)
	}
}

func TestTableIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Permissions() {
		if p.Access != "read" && p.Access != "write" {
			t.Errorf("%s: access %q, want read or write", p.Name, p.Access)
		}
		if p.Why == "" || seen[p.Name] {
			t.Errorf("%s: duplicate or without a reason", p.Name)
		}
		seen[p.Name] = true
	}
	if PermissionMap()["metadata"] != "read" {
		t.Error("metadata: read is mandatory for every App")
	}
	for _, e := range Events() {
		if e.Why == "" || seen["event:"+e.Name] {
			t.Errorf("event %s: duplicate or without a reason", e.Name)
		}
		seen["event:"+e.Name] = true
	}
}
