package kubetestenv

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestBinDir(t *testing.T) {
	for _, tc := range []struct {
		name              string
		binDir, xdg, home string
		want              string
	}{
		{name: "override", binDir: "/opt/kube", xdg: "/xdg", home: "/home/u", want: "/opt/kube"},
		{name: "XDG cache", xdg: "/xdg", home: "/home/u", want: "/xdg/storagebot/kube-" + KubernetesVersion},
		{name: "home cache", home: "/home/u", want: "/home/u/.cache/storagebot/kube-" + KubernetesVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvBinDir, tc.binDir)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			if got := BinDir(); got != tc.want {
				t.Errorf("BinDir() = %q, want %q", got, tc.want)
			}
		})
	}
}

// outcomeTB records how Start ends a test without ending the real one.
type outcomeTB struct {
	testing.TB
	skipped, fatal string
}

func (o *outcomeTB) Skip(args ...any) {
	o.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (o *outcomeTB) Fatal(args ...any) {
	o.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

// startOutcome runs Start on a recording TB in its own goroutine, as the testing package runs a test.
func startOutcome(t *testing.T) *outcomeTB {
	o := &outcomeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(o)
		t.Error("Start returned without the binaries")
	}()
	<-done
	return o
}

func TestStartWithoutBinaries(t *testing.T) {
	dir := t.TempDir()
	// etcd is there, the other two are not: the message names what is missing.
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinDir, dir)

	t.Run("skips with how to build", func(t *testing.T) {
		t.Setenv(EnvRequired, "")
		o := startOutcome(t)
		if o.fatal != "" {
			t.Fatalf("Start failed (%s), want a skip", o.fatal)
		}
		for _, want := range []string{"kube-apiserver, kube-controller-manager not found in " + dir, "bash " + BuildScript, EnvBinDir} {
			if !strings.Contains(o.skipped, want) {
				t.Errorf("skip message %q does not contain %q", o.skipped, want)
			}
		}
	})
	t.Run("fails when required", func(t *testing.T) {
		t.Setenv(EnvRequired, "1")
		o := startOutcome(t)
		if o.skipped != "" || !strings.Contains(o.fatal, EnvRequired+" is set") || !strings.Contains(o.fatal, BuildScript) {
			t.Errorf("Start skipped %q / failed %q, want a failure naming %s and the build script", o.skipped, o.fatal, EnvRequired)
		}
	})
}

// TestPKI checks the certificates kube-apiserver and its clients are given: the serving certificate is valid
// for 127.0.0.1 and localhost, the admin certificate authenticates as group system:masters.
func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, p.CACert))

	serving := readCert(t, p.ServingCert)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := serving.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	admin := readCert(t, p.AdminCert)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate as a client: %v", err)
	}
	if got := admin.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("admin certificate groups (O) = %v, want [system:masters]", got)
	}
	for _, f := range []string{p.ServingKey, p.AdminKey, p.ServiceAccountPrivateKey, p.ServiceAccountPublicKey} {
		if block := readPEM(t, f); block == nil {
			t.Errorf("%s holds no PEM block", f)
		}
	}
	key, err := x509.ParsePKCS1PrivateKey(readPEM(t, p.ServiceAccountPrivateKey).Bytes)
	if err != nil {
		t.Fatalf("service-account private key: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(readPEM(t, p.ServiceAccountPublicKey).Bytes)
	if err != nil {
		t.Fatalf("service-account public key: %v", err)
	}
	if !key.PublicKey.Equal(pub) {
		t.Error("the service-account public key does not belong to its private key")
	}
}

func readPEM(t *testing.T, path string) *pem.Block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return block
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readPEM(t, path).Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
