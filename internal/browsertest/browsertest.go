// Package browsertest starts a real headless Chromium for tests, through chromedp, so pages the server renders
// are checked the way a person's browser shows them. A machine without Chromium skips those tests with a
// message saying what to install, unless the environment variable RequireEnv is set (CI sets it), in which
// case the test fails: a browser test silently skipped in CI would be a test that asserts nothing.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/storagebot/storagebot/internal/testkit"
)

const (
	// RequireEnv, set to anything but "" or "0", makes a missing Chromium a test failure instead of a skip.
	RequireEnv = "STORAGEBOT_REQUIRE_BROWSER"
	// BinaryEnv names the Chromium (or Chrome) binary to run; without it the usual names are looked up on PATH.
	BinaryEnv = "STORAGEBOT_CHROMIUM"
	// ScreenshotsEnv, set to anything but "" or "0", makes Screenshot write its PNGs into docs/screenshots;
	// otherwise screenshots are taken (so the code path is exercised) but not written, and tests leave the
	// tree clean.
	ScreenshotsEnv = "STORAGEBOT_SCREENSHOTS"
)

// candidates are the binary names looked up on PATH, Debian's package first.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Find returns the path of the Chromium binary: BinaryEnv when set, else the first of the usual names on PATH.
func Find() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", BinaryEnv, p, err)
		}
		return found, nil
	}
	for _, name := range candidates {
		if found, err := exec.LookPath(name); err == nil {
			return found, nil
		}
	}
	return "", fmt.Errorf("no Chromium on PATH (looked for %s): install it (Debian: apt-get install -y chromium) or set %s", strings.Join(candidates, ", "), BinaryEnv)
}

// Flags are the command-line flags every test browser gets: headless, no sandbox (tests often run as root in
// containers, where Chromium's sandbox cannot start), no GPU, and nothing that talks to the network on its own
// (component updates, sync, background requests, QUIC), so tests reach nothing but loopback.
func Flags() []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Every host but localhost and 127.0.0.1 fails to resolve: a page that links outside loopback shows an error
		// instead of reaching the internet.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 900),
	}
}

// Timeout bounds a whole browser session of one test. It is a deadline against hangs, never a measure of speed:
// a slow machine must not fail a test.
const Timeout = 3 * time.Minute

// New starts a fresh headless Chromium (its own --user-data-dir under t.TempDir()) and returns a chromedp
// context for one tab, ready for chromedp.Do and chromedp.Run. The browser stops when the test ends. Without
// Chromium the test is skipped, or fails when RequireEnv is set. The browser's own output is logged when the
// test fails.
func New(t testing.TB) context.Context {
	t.Helper()
	bin, err := Find()
	if err != nil {
		if required() {
			t.Fatalf("browser test required (%s is set) but %v", RequireEnv, err)
		}
		t.Skipf("skipping browser test: %v", err)
	}
	out := &testkit.SyncBuffer{} // chromedp writes the browser's output from its own goroutine
	opts := append(Flags(),
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		if t.Failed() {
			if s := out.String(); s != "" {
				t.Logf("browser output:\n%s", s)
			}
		}
	})
	// Start the browser now, so a binary that cannot start fails here and not inside the test's first step.
	if err := chromedp.Do(tabCtx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", bin, err) // the cleanup logs the browser's output
	}
	return tabCtx
}

// Screenshot takes a full-page PNG of the tab and, when ScreenshotsEnv is set, writes it to
// docs/screenshots/<name>.png in the repository. It returns the PNG.
func Screenshot(t testing.TB, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !enabled(os.Getenv(ScreenshotsEnv)) {
		return png
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("wrote %s", path)
	return png
}

func required() bool { return enabled(os.Getenv(RequireEnv)) }

func enabled(v string) bool { return v != "" && v != "0" && !strings.EqualFold(v, "false") }

// repoRoot is the directory holding go.mod, found upwards from the test's working directory (its package).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
