package seal

import (
	"regexp"
	"strings"
	"testing"
)

var macForm = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// FuzzVerify checks the MAC on arbitrary payloads, scopes and MAC text: a MAC verifies its own payload under
// its own scope and nothing else, the zero Key verifies nothing, and a MAC can never end an HTML comment.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("exceptions [] "), "org/storage", "#7", "", byte(0))
	f.Add([]byte("promotion {\"target\":\"staging\"}"), "a", "bc", "AAAA", byte(1))
	f.Add([]byte{}, "", "", "-->", byte(0xff))
	f.Add([]byte("x"), "ab", "c", "not base64 !", byte(7))
	f.Fuzz(func(t *testing.T, payload []byte, scope1, scope2, mac string, flip byte) {
		root, err := New([]byte("fuzz secret"))
		if err != nil {
			t.Fatal(err)
		}
		k := root.For(scope1, scope2)
		sig := k.Sign(payload)
		if !macForm.MatchString(sig) || strings.Contains(sig, "-->") {
			t.Fatalf("Sign = %q, want 43 URL-safe base64 characters", sig)
		}
		if !k.Verify(payload, sig) {
			t.Fatal("a MAC does not verify its own payload")
		}
		if (Key{}).Verify(payload, sig) || (Key{}).Sign(payload) != "" || !(Key{}).For(scope1).IsZero() {
			t.Fatal("the zero Key signs or verifies something")
		}
		// Length-prefixed scopes: moving a byte from one part to the other is another scope.
		if scope1 != "" {
			moved := root.For(scope1[:len(scope1)-1], scope1[len(scope1)-1:]+scope2)
			if moved.Verify(payload, sig) {
				t.Fatalf("scopes (%q,%q) and the shifted split verify the same MAC", scope1, scope2)
			}
		}
		if root.Verify(payload, sig) {
			t.Fatal("a scoped MAC verifies under the unscoped key")
		}
		if len(payload) > 0 && flip != 0 {
			changed := append([]byte(nil), payload...)
			changed[int(flip)%len(changed)] ^= flip
			if k.Verify(changed, sig) {
				t.Fatalf("a MAC verifies a changed payload %q", changed)
			}
		}
		if mac != sig && k.Verify(payload, mac) {
			t.Fatalf("Verify accepted %q, which is not the MAC %q", mac, sig)
		}
	})
}

// FuzzFromPrivateKeyPEM feeds the key derivation arbitrary bytes: it must return a Key or an error, never
// panic, and never a zero Key without an error.
func FuzzFromPrivateKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("not a key"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := FromPrivateKeyPEM(data)
		if err == nil && k.IsZero() {
			t.Fatal("FromPrivateKeyPEM returned the zero Key without an error")
		}
		if err != nil && !k.IsZero() {
			t.Fatalf("FromPrivateKeyPEM returned a Key with the error %v", err)
		}
	})
}
