package policy

import (
	"bytes"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// MaxManifestSize is the largest manifest.yml the manifest reader accepts; real manifests are a few KiB.
const MaxManifestSize = 1 << 20

// maxManifestNodes bounds the YAML nodes of a manifest counted with every alias expanded, so an alias bomb
// ("billion laughs") is refused instead of being expanded by whoever reads the manifest next.
const maxManifestNodes = 100_000

// Errors the manifest reader returns for manifests it refuses to read.
var (
	ErrManifestTooLarge   = errors.New("manifest is larger than 1 MiB")
	ErrManifestTooComplex = errors.New("manifest expands to too many YAML nodes (alias bomb?)")
)

// ManifestFields are the fields of manifest.yml the rules check.
type ManifestFields struct {
	Name    string
	Version string
}

// ReadManifest parses a manifest.yml and returns its name and version. It refuses manifests over
// MaxManifestSize, alias bombs and recursive aliases, and documents that are not a mapping; a missing or
// non-string name or version is an error.
func ReadManifest(data []byte) (ManifestFields, error) {
	if len(data) > MaxManifestSize {
		return ManifestFields{}, ErrManifestTooLarge
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return ManifestFields{}, fmt.Errorf("parse YAML: %w", err)
	}
	if _, err := countExpandedNodes(&doc, maxManifestNodes); err != nil {
		return ManifestFields{}, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	root = resolveAlias(root)
	if root.Kind != yaml.MappingNode {
		return ManifestFields{}, fmt.Errorf("line %d: the manifest must be a YAML mapping of fields", root.Line)
	}
	var m ManifestFields
	var seenName, seenVersion bool
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := resolveAlias(root.Content[i]), resolveAlias(root.Content[i+1])
		var dst *string
		switch key.Value {
		case "name":
			dst, seenName = &m.Name, true
		case "version":
			dst, seenVersion = &m.Version, true
		default:
			continue
		}
		if value.Kind != yaml.ScalarNode || value.Tag == "!!null" {
			return ManifestFields{}, fmt.Errorf("line %d: %s must be a string", value.Line, key.Value)
		}
		*dst = value.Value
	}
	switch {
	case !seenName:
		return ManifestFields{}, errors.New("the manifest has no name field")
	case !seenVersion:
		return ManifestFields{}, errors.New("the manifest has no version field")
	}
	return m, nil
}

// resolveAlias follows alias nodes to the node they name.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// countExpandedNodes counts the nodes under n as a reader expanding every alias would see them, stopping
// with ErrManifestTooComplex past limit or on an alias that contains itself. Each distinct node is visited
// once (the count of an anchored node is memoised), so the cost is linear in the parsed document.
func countExpandedNodes(n *yaml.Node, limit int) (int, error) {
	const inProgress = -1
	memo := map[*yaml.Node]int{}
	var count func(n *yaml.Node) (int, error)
	count = func(n *yaml.Node) (int, error) {
		if n == nil {
			return 0, nil
		}
		if n.Kind == yaml.AliasNode {
			target := n.Alias
			if target == nil {
				return 1, nil
			}
			switch c, ok := memo[target]; {
			case ok && c == inProgress:
				return 0, ErrManifestTooComplex
			case ok:
				return c, nil
			}
			return count(target)
		}
		memo[n] = inProgress
		total := 1
		for _, child := range n.Content {
			c, err := count(child)
			if err != nil {
				return 0, err
			}
			total += c
			if total > limit {
				return 0, ErrManifestTooComplex
			}
		}
		memo[n] = total
		return total, nil
	}
	return count(n)
}
