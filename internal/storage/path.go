package storage

import "strings"

// PackagesDir is the top-level directory of a storage branch that holds every package.
const PackagesDir = "packages"

// ParsePath splits a repository path of the form packages/<name>/<version>/<rest> into its parts. rest is ""
// for the version directory itself. ok is false for paths outside a package version (the repository root
// files, packages/ itself, or a package directory without a version).
func ParsePath(p string) (pkg, version, rest string, ok bool) {
	after, found := strings.CutPrefix(p, PackagesDir+"/")
	if !found {
		return "", "", "", false
	}
	parts := strings.SplitN(after, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", "", "", false
	}
	if len(parts) == 3 {
		rest = parts[2]
	}
	return parts[0], parts[1], rest, true
}

// VersionPath is the repository path of a package version's directory.
func VersionPath(pkg, version string) string {
	return PackagesDir + "/" + pkg + "/" + version
}
