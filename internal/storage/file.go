package storage

import (
	"context"
	"fmt"
	"strings"
)

// ReadFile returns the contents of the file at path (slash-separated, from the repository root) in the tree
// rootTree, reading one tree per path segment. found is false when there is no such file.
func ReadFile(ctx context.Context, r Reader, rootTree, path string) (data []byte, found bool, err error) {
	tree := rootTree
	parts := strings.Split(path, "/")
	for i, name := range parts {
		entries, err := r.Tree(ctx, tree, false)
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", path, err)
		}
		next := TreeEntry{}
		for _, e := range entries {
			if e.Path == name {
				next = e
				break
			}
		}
		last := i == len(parts)-1
		switch {
		case next.SHA == "":
			return nil, false, nil
		case last && next.Type == TypeBlob:
			data, err := r.Blob(ctx, next.SHA)
			if err != nil {
				return nil, false, fmt.Errorf("read %s: %w", path, err)
			}
			return data, true, nil
		case last || next.Type != TypeTree:
			return nil, false, nil
		}
		tree = next.SHA
	}
	return nil, false, nil
}
