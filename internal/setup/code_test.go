package setup

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidCodeMatchesTheRegexp: validCode accepts exactly what ^[A-Za-z0-9_-]{1,100}$ did.
func TestValidCodeMatchesTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	codes := []string{"", "a", "0f3c9e", "A-b_9", strings.Repeat("a", 100), strings.Repeat("a", 101),
		"../app", "a/b", "a b", "abc\n", "\nabc", "é", "a%2F", "a.b", "a+b", "a\x00"}
	for c := byte(0); c < 128; c++ {
		codes = append(codes, "x"+string(rune(c)))
	}
	for _, code := range codes {
		if got, want := validCode(code), re.MatchString(code); got != want {
			t.Errorf("validCode(%q) = %v, want %v", code, got, want)
		}
	}
}
