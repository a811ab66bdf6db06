package policy

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

// FuzzParseVersion holds the strict parser to the semver library the registry's rules were first written
// against (Masterminds semver's StrictNewVersion): the same versions accepted, with the same fields and the
// same reason when refused, and the same order between any two. The library stays a test dependency only.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"1.0.0", "0.0.0", "8.1.0-beta.1", "1.0.0-alpha+001", "1.0.0+20130313144700", "1.0.0-0.3.7",
		"1.0.0-x.7.z.92", "1.0.0-alpha.beta", "1.0.0-rc.1+build.1", "1.0.0-99999999999999999999",
		"", "1", "1.0", "v1.0.0", "01.0.0", "1.00.0", "1.0.00", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b",
		"1.0.0+a..b", "1.0.0-a_b", "1.0.0+a_b", "1.0.0+01", "..", "1..0", "1.0.0.0", "18446744073709551616.0.0",
		"1.0.0-+", "1.0.0+-", "1.0.0-a+b+c", " 1.0.0", "1.0.0 ", "1.0.0-ä",
	} {
		f.Add(s, "1.0.0-beta.2")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		mine, err := parseStrict(a)
		lib, libErr := semver.StrictNewVersion(a)
		if (err == nil) != (libErr == nil) {
			t.Fatalf("%q: parse error %v, library %v", a, err, libErr)
		}
		if err != nil {
			if err.Error() != libErr.Error() {
				t.Fatalf("%q: refused with %q, library with %q", a, err, libErr)
			}
			return
		}
		if mine.Major != lib.Major() || mine.Minor != lib.Minor() || mine.Patch != lib.Patch() ||
			mine.Prerelease != lib.Prerelease() || mine.Build != lib.Metadata() || mine.String() != lib.String() {
			t.Fatalf("%q: parsed %+v (%s), library %s", a, mine, mine, lib)
		}
		if next, libNext := mine.NextPatch().String(), lib.IncPatch().String(); next != libNext {
			t.Fatalf("%q: next patch %s, library %s", a, next, libNext)
		}
		other, err := parseStrict(b)
		libOther, libErr := semver.StrictNewVersion(b)
		if err != nil || libErr != nil {
			return
		}
		if c, libC := mine.Compare(other), lib.Compare(libOther); c != libC {
			t.Fatalf("compare %q %q = %d, library %d", a, b, c, libC)
		}
	})
}
