// Package storagegen builds package-storage git repositories for tests and benchmarks: three channel
// branches holding packages/<name>/<version>/… with valid manifests, a Dockerfile and a go.mod pinning the
// registry version, then change commits on any branch to build scenarios.
//
// Repositories are written with `git fast-import`, which packs objects directly: a production-sized storage
// (185 packages, ~2,000 versions, ~130k files) takes seconds, not the minutes 130k loose objects would.
// Everything is deterministic for a given Options (fixed author, dates and seeded contents), so SHAs are
// stable across runs.
package storagegen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
)

// Channel branches every generated repository has, lowest to highest.
var Channels = []string{"snapshot", "staging", "production"}

// Options size a generated repository. Zero values take the defaults noted on each field.
type Options struct {
	// Bare creates a bare repository; otherwise a repository with a work tree (left empty: only the object
	// database and refs matter to readers).
	Bare bool
	// Packages is the number of packages (default 3).
	Packages int
	// VersionsPerPackage is the number of versions of each package (default 2).
	VersionsPerPackage int
	// FilesPerVersion is the number of files in each version, manifest.yml included (default 5, minimum 2).
	FilesPerVersion int
	// FileSize is the size in bytes of each generated file other than manifest.yml (default 256).
	FileSize int
	// Seed makes file contents deterministic; different seeds give different contents.
	Seed uint64
	// RegistryVersion is the package-registry version pinned by Dockerfile and go.mod (default "v1.15.0").
	RegistryVersion string
}

func (o Options) withDefaults() Options {
	if o.Packages == 0 {
		o.Packages = 3
	}
	if o.VersionsPerPackage == 0 {
		o.VersionsPerPackage = 2
	}
	if o.FilesPerVersion < 2 {
		o.FilesPerVersion = 5
	}
	if o.FileSize == 0 {
		o.FileSize = 256
	}
	if o.RegistryVersion == "" {
		o.RegistryVersion = "v1.15.0"
	}
	return o
}

// ProductionSize is a storage the size of elastic/package-storage's production branch at the end of 2022:
// 185 packages, 2,035 versions, 132,275 files (generated in about 10 s on 2 cores).
func ProductionSize() Options {
	return Options{Packages: 185, VersionsPerPackage: 11, FilesPerVersion: 65, FileSize: 256}
}

// Repo is a generated storage repository.
type Repo struct {
	// Dir is the repository directory (the git directory when bare, the work tree otherwise).
	Dir  string
	Bare bool
	opts Options
	// seq numbers commits so that every commit gets its own deterministic date.
	seq int
}

// PackageName is the name of the i-th generated package.
func PackageName(i int) string { return fmt.Sprintf("pkg%03d", i) }

// VersionName is the name of the i-th generated version of a package: 1.0.0 … 1.9.0, 2.0.0 …
func VersionName(i int) string { return fmt.Sprintf("%d.%d.0", 1+i/10, i%10) }

// Generate creates a storage repository in dir (which must be empty or absent) with branches snapshot,
// staging and production all at one commit holding every generated package, and HEAD on production.
func Generate(dir string, opts Options) (*Repo, error) {
	opts = opts.withDefaults()
	r := &Repo{Dir: dir, Bare: opts.Bare, opts: opts}
	args := []string{"-c", "init.defaultBranch=production", "init", "-q"}
	if opts.Bare {
		args = append(args, "--bare")
	}
	if _, err := r.git(nil, append(args, dir)...); err != nil {
		return nil, fmt.Errorf("generate storage in %s: %w", dir, err)
	}
	err := r.fastImport(func(w *bufio.Writer) {
		r.writeCommitHeader(w, "production", "Generated storage", "")
		writeFile(w, "100644", "Dockerfile", []byte(Dockerfile(opts.RegistryVersion)))
		writeFile(w, "100644", "go.mod", []byte(GoMod(opts.RegistryVersion)))
		for p := 0; p < opts.Packages; p++ {
			for v := 0; v < opts.VersionsPerPackage; v++ {
				r.writeVersion(w, PackageName(p), VersionName(v), uint64(p*opts.VersionsPerPackage+v))
			}
		}
		fmt.Fprintf(w, "\nreset refs/heads/staging\nfrom refs/heads/production\n\n")
		fmt.Fprintf(w, "reset refs/heads/snapshot\nfrom refs/heads/production\n\n")
	})
	if err != nil {
		return nil, fmt.Errorf("generate storage in %s: %w", dir, err)
	}
	return r, nil
}

// Dockerfile is the root Dockerfile of a storage pinning the registry at version (e.g. "v1.15.0").
func Dockerfile(version string) string {
	return fmt.Sprintf("ARG PACKAGE_REGISTRY=%s\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n\nCOPY packages /packages/storage\n", version)
}

// GoMod is the root go.mod of a storage requiring the registry at version.
func GoMod(version string) string {
	return fmt.Sprintf("module github.com/elastic/package-storage\n\ngo 1.19\n\nrequire github.com/elastic/package-registry %s\n", version)
}

// Manifest is a valid manifest.yml for a package version.
func Manifest(pkg, version string) string {
	return fmt.Sprintf("format_version: 1.0.0\nname: %s\ntitle: %s\nversion: %s\ndescription: Generated package %s.\ntype: integration\nowner:\n  github: elastic/integrations\n", pkg, strings.ToUpper(pkg), version, pkg)
}

// VersionFiles returns the files of a generated version, by path relative to the version directory; seed
// varies their contents.
func VersionFiles(pkg, version string, files, size int, seed uint64) map[string][]byte {
	out := map[string][]byte{"manifest.yml": []byte(Manifest(pkg, version))}
	rng := rand.New(rand.NewPCG(seed, uint64(len(pkg))<<32|uint64(len(version))))
	for i := 1; i < files; i++ {
		out[versionFilePath(i)] = text(rng, size)
	}
	return out
}

func versionFilePath(i int) string {
	switch i {
	case 1:
		return "docs/README.md"
	case 2:
		return "img/logo.svg"
	default:
		return fmt.Sprintf("data_stream/ds%02d/fields/fields%03d.yml", (i-3)/8, i)
	}
}

func (r *Repo) writeVersion(w io.Writer, pkg, version string, seed uint64) {
	files := VersionFiles(pkg, version, r.opts.FilesPerVersion, r.opts.FileSize, r.opts.Seed^(seed*0x9e3779b97f4a7c15))
	for _, path := range sortedKeys(files) {
		writeFile(w, "100644", "packages/"+pkg+"/"+version+"/"+path, files[path])
	}
}

func (r *Repo) writeCommitHeader(w io.Writer, branch, message, from string) {
	r.seq++
	fmt.Fprintf(w, "commit refs/heads/%s\ncommitter Storage Generator <storagegen@example.com> %d +0000\n", branch, 1_600_000_000+r.seq*60)
	fmt.Fprintf(w, "data %d\n%s\n", len(message), message)
	if from != "" {
		fmt.Fprintf(w, "from %s\n", from)
	}
}

func writeFile(w io.Writer, mode, path string, data []byte) {
	fmt.Fprintf(w, "M %s inline %s\ndata %d\n", mode, path, len(data))
	w.Write(data)
	io.WriteString(w, "\n")
}

// text is size bytes of line-broken lowercase words.
func text(rng *rand.Rand, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		switch {
		case i%64 == 63:
			b[i] = '\n'
		case rng.IntN(6) == 0:
			b[i] = ' '
		default:
			b[i] = byte('a' + rng.IntN(26))
		}
	}
	return b
}

// fastImport streams what write produces into `git fast-import`, never holding the whole stream in memory.
func (r *Repo) fastImport(write func(w *bufio.Writer)) error {
	cmd := r.command("fast-import", "--quiet", "--force")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	write(w)
	flushErr := w.Flush()
	closeErr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git fast-import: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return errors.Join(flushErr, closeErr)
}

func (r *Repo) command(args ...string) *exec.Cmd {
	if len(args) == 0 || args[0] != "-c" {
		args = append([]string{"-C", r.Dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	return cmd
}

func (r *Repo) git(stdin io.Reader, args ...string) (string, error) {
	cmd := r.command(args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
