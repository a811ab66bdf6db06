// Package seal makes the state storagebot keeps on GitHub tamper-evident.
//
// The bot records what it decided (exceptions granted with /allow, what a promotion or removal PR holds, that
// a follow-up note was posted) in hidden markers in its comments and PR bodies. Anyone with write access can
// edit those, the bot's own comments included, so a marker is evidence only when it carries a MAC that only
// the server can compute: HMAC-SHA256 with a key derived from the App's private key. Every replica holding the
// same private key derives the same key, so any replica verifies what another one wrote; the key itself is
// never printed, logged or stored anywhere.
package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
)

// derivationLabel separates this key from anything else that might ever be derived from the App key. Changing
// it invalidates every marker already on GitHub.
const derivationLabel = "storagebot marker seal v1"

// Key signs and verifies markers. The zero Key signs nothing and verifies nothing, so a server that somehow
// has no key trusts no recorded state instead of trusting all of it.
type Key struct {
	k []byte
}

// New derives a Key from secret material (HKDF-SHA256 with a fixed label).
func New(secret []byte) (Key, error) {
	if len(secret) == 0 {
		return Key{}, errors.New("derive the marker key: empty secret")
	}
	k, err := hkdf.Key(sha256.New, secret, nil, derivationLabel, sha256.Size)
	if err != nil {
		return Key{}, fmt.Errorf("derive the marker key: %w", err)
	}
	return Key{k: k}, nil
}

// FromPrivateKeyPEM derives the Key from the App's RSA private key (PKCS#1 or PKCS#8 PEM). The derivation
// reads the key's modulus and private exponent, not the PEM text, so the same key in either encoding, with
// any line wrapping, gives the same Key on every replica.
func FromPrivateKeyPEM(data []byte) (Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return Key{}, errors.New("derive the marker key: the App private key holds no PEM block")
	}
	var rk *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		rk = k
	} else if k8, err8 := x509.ParsePKCS8PrivateKey(block.Bytes); err8 == nil {
		var ok bool
		if rk, ok = k8.(*rsa.PrivateKey); !ok {
			return Key{}, errors.New("derive the marker key: the App private key is not RSA")
		}
	} else {
		return Key{}, fmt.Errorf("derive the marker key: parse the App private key: %w", err)
	}
	var secret []byte
	secret = appendPart(secret, rk.N.Bytes())
	secret = appendPart(secret, rk.D.Bytes())
	return New(secret)
}

// For returns a Key bound to a scope (what the marker is and where it lives, e.g. "exceptions",
// "owner/repo", "#12"): a MAC made for one scope never verifies in another, so a marker copied from another
// pull request or repository counts for nothing there.
func (k Key) For(scope ...string) Key {
	if k.IsZero() {
		return Key{}
	}
	m := hmac.New(sha256.New, k.k)
	var buf []byte
	for _, s := range scope {
		buf = appendPart(buf, []byte(s))
	}
	m.Write(buf)
	return Key{k: m.Sum(nil)}
}

// IsZero reports whether k is the zero Key.
func (k Key) IsZero() bool { return len(k.k) == 0 }

// Sign returns the MAC of payload, URL-safe base64 without padding (43 characters, no "-->"), or "" for the
// zero Key.
func (k Key) Sign(payload []byte) string {
	if k.IsZero() {
		return ""
	}
	m := hmac.New(sha256.New, k.k)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify reports whether mac is the MAC of payload under k, comparing in constant time. The zero Key
// verifies nothing.
func (k Key) Verify(payload []byte, mac string) bool {
	if k.IsZero() || mac == "" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, k.k)
	m.Write(payload)
	return hmac.Equal(got, m.Sum(nil))
}

// String never shows the key, so a Key that ends up in a log line or an error leaks nothing.
func (k Key) String() string {
	if k.IsZero() {
		return "seal.Key(none)"
	}
	return "seal.Key(set)"
}

// GoString keeps %#v from printing the key bytes.
func (k Key) GoString() string { return k.String() }

// appendPart appends a length-prefixed part, so ("ab","c") and ("a","bc") never collide.
func appendPart(buf, part []byte) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(part)))
	return append(buf, part...)
}
