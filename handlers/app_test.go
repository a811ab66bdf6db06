package handlers

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/appmanifest"
)

// TestHandledEventsMatchTheManifestTable holds the handlers to the App's table of events: an event handled
// but not subscribed never arrives, and one subscribed but not handled is traffic for nothing.
func TestHandledEventsMatchTheManifestTable(t *testing.T) {
	var handled []string
	for _, h := range New(Deps{}).Handlers() {
		handled = append(handled, h.Handles()...)
	}
	sort.Strings(handled)
	if diff := cmp.Diff(appmanifest.HandledEvents(), handled); diff != "" {
		t.Errorf("events handled differ from internal/appmanifest (-table +handlers):\n%s", diff)
	}
}
