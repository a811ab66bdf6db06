package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a strict semantic version (semver.org 2.0.0): major.minor.patch, an optional prerelease after
// "-" and optional build metadata after "+".
//
// It is parsed here rather than by a library because the one the project used compiled its regular
// expressions at package initialisation, which every run of the binary paid (1.6 ms of `storagebot check`'s
// start-up); the rules and error texts are those of Masterminds semver's StrictNewVersion, which
// FuzzParseVersion holds this parser to.
type Version struct {
	Major, Minor, Patch uint64
	Prerelease, Build   string
}

// The reasons a version is refused; texts as the registry's semver library words them.
var (
	errVersionEmpty      = errors.New("version string empty")
	errInvalidSemVer     = errors.New("invalid semantic version")
	errInvalidCharacters = errors.New("invalid characters in version")
	errSegmentStartsZero = errors.New("version segment starts with 0")
	errInvalidMetadata   = errors.New("invalid metadata string")
	errInvalidPrerelease = errors.New("invalid prerelease string")
)

// ParseVersion parses a version directory name as the registry does: strict semver, no "v" prefix, no
// partial versions ("1.0" is invalid).
func ParseVersion(s string) (Version, error) {
	v, err := parseStrict(s)
	if err != nil {
		return Version{}, fmt.Errorf("parse version %q: %w", s, err)
	}
	return v, nil
}

// IsStrictVersion reports whether s is a strict semantic version.
func IsStrictVersion(s string) bool {
	_, err := parseStrict(s)
	return err == nil
}

// StrictVersionError says why s is not a strict semantic version, or nil when it is one.
func StrictVersionError(s string) error {
	_, err := parseStrict(s)
	return err
}

func parseStrict(s string) (Version, error) {
	if s == "" {
		return Version{}, errVersionEmpty
	}
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return Version{}, errInvalidSemVer
	}
	var v Version
	if rest, build, ok := strings.Cut(parts[2], "+"); ok {
		if err := checkIdentifiers(build, errInvalidMetadata, false); err != nil {
			return Version{}, err
		}
		parts[2], v.Build = rest, build
	}
	if rest, pre, ok := strings.Cut(parts[2], "-"); ok {
		if err := checkIdentifiers(pre, errInvalidPrerelease, true); err != nil {
			return Version{}, err
		}
		parts[2], v.Prerelease = rest, pre
	}
	for _, p := range parts {
		if !allDigits(p) {
			return Version{}, errInvalidCharacters
		}
		if len(p) > 1 && p[0] == '0' {
			return Version{}, errSegmentStartsZero
		}
	}
	var err error
	for i, dst := range []*uint64{&v.Major, &v.Minor, &v.Patch} {
		if *dst, err = strconv.ParseUint(parts[i], 10, 64); err != nil {
			return Version{}, err // empty, or beyond 64 bits
		}
	}
	return v, nil
}

// checkIdentifiers checks dot-separated identifiers: non-empty, ASCII alphanumerics and hyphens; numeric
// ones in a prerelease without leading zeros.
func checkIdentifiers(s string, invalid error, prerelease bool) error {
	for _, id := range strings.Split(s, ".") {
		switch {
		case id == "":
			return invalid
		case prerelease && allDigits(id):
			if len(id) > 1 && id[0] == '0' {
				return errSegmentStartsZero
			}
		case !identifierChars(id):
			return invalid
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func identifierChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// Compare returns -1, 0 or 1 as v sorts before, with or after o: by major, minor and patch, then a
// prerelease before its release and prereleases identifier by identifier (numbers numerically and before
// words); build metadata is ignored.
func (v Version) Compare(o Version) int {
	for _, d := range [][2]uint64{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if d[0] != d[1] {
			return cmpUint(d[0], d[1])
		}
	}
	switch {
	case v.Prerelease == o.Prerelease:
		return 0
	case v.Prerelease == "":
		return 1
	case o.Prerelease == "":
		return -1
	}
	vs, os := strings.Split(v.Prerelease, "."), strings.Split(o.Prerelease, ".")
	for i := 0; i < len(vs) || i < len(os); i++ {
		switch {
		case i >= len(vs):
			return -1 // fewer identifiers sort first
		case i >= len(os):
			return 1
		}
		if d := comparePrereleaseIdentifier(vs[i], os[i]); d != 0 {
			return d
		}
	}
	return 0
}

// comparePrereleaseIdentifier orders two identifiers: numbers numerically, before any word; words by
// bytes. An identifier of digits too long for 64 bits orders as a word, as the registry's library does.
func comparePrereleaseIdentifier(a, b string) int {
	if a == b {
		return 0
	}
	an, aErr := strconv.ParseUint(a, 10, 64)
	bn, bErr := strconv.ParseUint(b, 10, 64)
	switch {
	case aErr == nil && bErr == nil:
		return cmpUint(an, bn)
	case aErr == nil:
		return -1
	case bErr == nil:
		return 1
	case a < b:
		return -1
	}
	return 1
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// NextPatch is the release after v: v's release when v is a prerelease, else the next patch.
func (v Version) NextPatch() Version {
	next := Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch}
	if v.Prerelease == "" {
		next.Patch++
	}
	return next
}

// String spells v as semver does.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Prerelease != "" {
		s += "-" + v.Prerelease
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
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
	va, errA := parseStrict(a)
	vb, errB := parseStrict(b)
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
	return strings.Compare(a, b)
}

// sameLine reports whether two versions share major.minor.
func sameLine(a, b Version) bool {
	return a.Major == b.Major && a.Minor == b.Minor
}
