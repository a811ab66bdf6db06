package seal

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

func testKeyPEMs(t *testing.T) (pkcs1, pkcs8 []byte) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der8, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der8})
}

func TestSameKeyWhateverTheEncoding(t *testing.T) {
	p1, p8 := testKeyPEMs(t)
	k1, err := FromPrivateKeyPEM(p1)
	if err != nil {
		t.Fatal(err)
	}
	k8, err := FromPrivateKeyPEM(p8)
	if err != nil {
		t.Fatal(err)
	}
	mac := k1.For("exceptions", "o/r").Sign([]byte("payload"))
	if !k8.For("exceptions", "o/r").Verify([]byte("payload"), mac) {
		t.Error("a MAC made with the PKCS#1 encoding does not verify with the PKCS#8 encoding of the same key")
	}
	other, _ := testKeyPEMs(t)
	ko, err := FromPrivateKeyPEM(other)
	if err != nil {
		t.Fatal(err)
	}
	if ko.For("exceptions", "o/r").Verify([]byte("payload"), mac) {
		t.Error("a MAC verifies under another App key")
	}
}

func TestVerify(t *testing.T) {
	k, err := New([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	mac := k.For("a", "b").Sign([]byte("payload"))
	tests := []struct {
		name    string
		key     Key
		payload string
		mac     string
		want    bool
	}{
		{name: "same scope and payload", key: k.For("a", "b"), payload: "payload", mac: mac, want: true},
		{name: "edited payload", key: k.For("a", "b"), payload: "payloaD", mac: mac},
		{name: "other scope", key: k.For("a", "c"), payload: "payload", mac: mac},
		{name: "scope parts shifted", key: k.For("ab", ""), payload: "payload", mac: mac},
		{name: "unscoped key", key: k, payload: "payload", mac: mac},
		{name: "no mac", key: k.For("a", "b"), payload: "payload", mac: ""},
		{name: "mac not base64", key: k.For("a", "b"), payload: "payload", mac: "!!!"},
		{name: "truncated mac", key: k.For("a", "b"), payload: "payload", mac: mac[:20]},
		{name: "zero key", key: Key{}, payload: "payload", mac: mac},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.Verify([]byte(tc.payload), tc.mac); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
	if len(mac) != 43 || strings.ContainsAny(mac, "+/= \n") {
		t.Errorf("MAC %q is not 43 characters of URL-safe base64", mac)
	}
}

func TestZeroKeySignsNothing(t *testing.T) {
	var z Key
	if got := z.Sign([]byte("x")); got != "" {
		t.Errorf("zero key signed: %q", got)
	}
	if !z.For("x").IsZero() {
		t.Error("a scope of the zero key is not zero")
	}
	if _, err := New(nil); err == nil {
		t.Error("New accepted an empty secret")
	}
	if _, err := FromPrivateKeyPEM([]byte("not a key")); err == nil {
		t.Error("FromPrivateKeyPEM accepted text without a PEM block")
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k, _ := New([]byte("secret"))
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, k); out != "seal.Key(set)" {
			t.Errorf("%s prints %q", format, out)
		}
	}
}
