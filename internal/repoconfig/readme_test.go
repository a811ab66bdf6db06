package repoconfig

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// readmeExample returns the YAML block of the README's "Repository configuration" section.
func readmeExample(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n### Repository configuration: `.github/storagebot.yml`\n")
	if !ok {
		t.Fatal("README.md has no Repository configuration section")
	}
	_, block, ok := strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md's Repository configuration section has no yaml block")
	}
	return []byte(block)
}

// keyProbes put an unknown key at each place of the schema whose keys are fixed, named by the path the README
// walk below gives that place ([] for a list's items, * for a rule or channel name).
var keyProbes = map[string]string{
	"":                                  "zz_probe: 1",
	"channels[]":                        "channels: [{zz_probe: 1}]",
	"rules.*.*":                         "rules: {overwrite: {staging: {zz_probe: 1}}}",
	"commands":                          "commands: {zz_probe: 1}",
	"exceptions":                        "exceptions: {zz_probe: 1}",
	"reconcile":                         "reconcile: {zz_probe: 1}",
	"distributions[]":                   "distributions: [{zz_probe: 1}]",
	"distributions[].build":             "distributions: [{name: production, build: {zz_probe: 1}}]",
	"distributions[].deploy":            "distributions: [{name: production, deploy: {zz_probe: 1}}]",
	"distributions[].deploy.kubernetes": "distributions: [{name: production, deploy: {kubernetes: {zz_probe: 1}}}]",
	"distributions[].verify":            "distributions: [{name: production, verify: {zz_probe: 1}}]",
}

var wantKeys = regexp.MustCompile(`unknown key "zz_probe" \(want ([^)]*)\)`)

// acceptedKeys asks the parser which keys each place of the schema accepts.
func acceptedKeys(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for place, doc := range keyProbes {
		_, err := Parse([]byte(doc))
		if err == nil {
			t.Fatalf("%s: the parser accepted an unknown key", place)
		}
		m := wantKeys.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("%s: no list of valid keys in %q", place, err)
		}
		out[place] = strings.Split(m[1], ", ")
	}
	return out
}

// documentedKeys walks the README's example and lists the keys at each place.
func documentedKeys(n *yaml.Node, place string, out map[string][]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			documentedKeys(c, place, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			documentedKeys(c, place+"[]", out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			out[place] = append(out[place], key)
			child := key
			if place == "rules" || place == "rules.*" {
				child = "*" // rule and channel names
			}
			if place != "" {
				child = place + "." + child
			}
			documentedKeys(n.Content[i+1], child, out)
		}
	}
}

// TestREADMEDocumentsRepositoryConfig: the README's .github/storagebot.yml is valid, and shows every key the
// parser accepts, at each place of the schema.
func TestREADMEDocumentsRepositoryConfig(t *testing.T) {
	example := readmeExample(t)
	if _, err := ParseFile("README.md", example); err != nil {
		t.Fatalf("README.md's .github/storagebot.yml is invalid:\n%v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	documentedKeys(&doc, "", documented)
	for place, keys := range acceptedKeys(t) {
		for _, k := range keys {
			if !slices.Contains(documented[place], k) {
				where := place
				if where == "" {
					where = "the top level"
				}
				t.Errorf("key %s at %s is accepted but missing from README.md's .github/storagebot.yml", k, where)
			}
		}
	}
}
