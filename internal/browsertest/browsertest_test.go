package browsertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserRendersAndClicks starts the browser against a loopback page, clicks a form button and reads the
// page the form's POST leads to: the launcher gives tests a browser that really submits forms.
func TestBrowserRendersAndClicks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			_, _ = io.WriteString(w, `<!doctype html><title>done</title><p id="got">`+r.PostForm.Get("greeting")+`</p>`)
			return
		}
		_, _ = io.WriteString(w, `<!doctype html><title>form</title><form method="post"><input type="hidden" name="greeting" value="hello"><button id="go">Go</button></form>`)
	}))
	defer srv.Close()

	t.Setenv(ScreenshotsEnv, "")
	ctx := New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("got"))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("got")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello" {
		t.Errorf("the posted page shows %q, want %q", got, "hello")
	}
	png := Screenshot(t, ctx, "browsertest-never-written") // ScreenshotsEnv cleared above: not written
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot is not a PNG (starts %q)", png[:min(8, len(png))])
	}
}

func TestFindHonoursBinaryEnv(t *testing.T) {
	t.Setenv(BinaryEnv, "/nonexistent/chromium")
	if _, err := Find(); err == nil {
		t.Fatalf("Find with %s pointing nowhere: no error", BinaryEnv)
	}
}
