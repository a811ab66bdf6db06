package storage

// PackagesDir is the top-level directory of a storage branch that holds every package.
const PackagesDir = "packages"

// VersionPath is the repository path of a package version's directory.
func VersionPath(pkg, version string) string {
	return PackagesDir + "/" + pkg + "/" + version
}
