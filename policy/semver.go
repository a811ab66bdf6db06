package policy

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// ParseVersion parses a version directory name as the registry does: strict semver, no "v" prefix, no
// partial versions ("1.0" is invalid).
func ParseVersion(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("parse version %q: %w", s, err)
	}
	return v, nil
}

// CompareVersions compares two strict semver versions, returning -1, 0 or 1. A prerelease sorts before its
// release (1.0.0-beta.1 < 1.0.0); build metadata is ignored (1.0.0+a == 1.0.0+b).
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// compareVersionKeys orders version strings for display: valid versions by semver (then by text, so build
// metadata still gives a total order), before invalid ones, which sort by text.
func compareVersionKeys(a, b string) int {
	va, errA := semver.StrictNewVersion(a)
	vb, errB := semver.StrictNewVersion(b)
	switch {
	case errA == nil && errB == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sameLine reports whether two versions share major.minor.
func sameLine(a, b *semver.Version) bool {
	return a.Major() == b.Major() && a.Minor() == b.Minor()
}
