package kubetestenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the key material of one control plane, written as PEM files into dir.
type pki struct {
	CACert                   string // the cluster CA; signs the serving and client certificates
	ServingCert, ServingKey  string // kube-apiserver's, for 127.0.0.1 and localhost
	AdminCert, AdminKey      string // a client of group system:masters
	ServiceAccountPublicKey  string // verifies service-account tokens
	ServiceAccountPrivateKey string // signs them

	caPEM, adminCertPEM, adminKeyPEM []byte
}

// newPKI generates a CA, kube-apiserver's serving certificate, an admin client certificate and the
// service-account key pair, all valid for a day, and writes them into dir.
func newPKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "storagebot-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}

	servingDER, servingKey, err := issueLeaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}, caCert, caKey, now)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	adminDER, adminKey, err := issueLeaf(&x509.Certificate{
		// Kubernetes takes the user from CN and the groups from O; system:masters passes every authorizer.
		Subject:     pkix.Name{CommonName: "storagebot-test-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey, now)
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}

	// RSA, the algorithm every Kubernetes version accepts for service-account tokens.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode service-account public key: %w", err)
	}

	p := &pki{
		CACert:                   filepath.Join(dir, "ca.crt"),
		ServingCert:              filepath.Join(dir, "apiserver.crt"),
		ServingKey:               filepath.Join(dir, "apiserver.key"),
		AdminCert:                filepath.Join(dir, "admin.crt"),
		AdminKey:                 filepath.Join(dir, "admin.key"),
		ServiceAccountPublicKey:  filepath.Join(dir, "sa.pub"),
		ServiceAccountPrivateKey: filepath.Join(dir, "sa.key"),
	}
	servingKeyPEM, err := ecKeyPEM(servingKey)
	if err != nil {
		return nil, err
	}
	if p.adminKeyPEM, err = ecKeyPEM(adminKey); err != nil {
		return nil, err
	}
	p.caPEM = pemBlock("CERTIFICATE", caDER)
	p.adminCertPEM = pemBlock("CERTIFICATE", adminDER)
	files := []struct {
		path string
		data []byte
	}{
		{p.CACert, p.caPEM},
		{p.ServingCert, pemBlock("CERTIFICATE", servingDER)},
		{p.ServingKey, servingKeyPEM},
		{p.AdminCert, p.adminCertPEM},
		{p.AdminKey, p.adminKeyPEM},
		{p.ServiceAccountPublicKey, pemBlock("PUBLIC KEY", saPub)},
		{p.ServiceAccountPrivateKey, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return p, nil
}

// issueLeaf generates a P-256 key and issues tmpl for it, signed by the CA and valid for a day around now.
func issueLeaf(tmpl, caCert *x509.Certificate, caKey crypto.Signer, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, _, err := sign(tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return der, key, nil
}

// sign issues tmpl (with a random serial number) signed by parent's key, returning DER and the parsed result.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func ecKeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode EC key: %w", err)
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
