package status

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// Observe wraps event handlers so that every delivery about a repository tells rec that the repository may
// have changed, and every handler error is recorded with the event, the delivery and the cause. The
// handlers themselves stay unaware of the status page.
func Observe(handlers []githubapp.EventHandler, rec Recorder) []githubapp.EventHandler {
	out := make([]githubapp.EventHandler, len(handlers))
	for i, h := range handlers {
		out[i] = observed{inner: h, rec: rec}
	}
	return out
}

type observed struct {
	inner githubapp.EventHandler
	rec   Recorder
}

func (o observed) Handles() []string { return o.inner.Handles() }

// eventRepository is the part every repository event shares.
type eventRepository struct {
	Installation *github.Installation `json:"installation"`
	Repository   *github.Repository   `json:"repository"`
}

func (o observed) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	err := o.inner.Handle(ctx, eventType, deliveryID, payload)
	var ev eventRepository
	if json.Unmarshal(payload, &ev) != nil || ev.Repository.GetFullName() == "" {
		if err != nil {
			o.rec.Failed("", fmt.Sprintf("%s delivery %s", eventType, deliveryID), err)
		}
		return err
	}
	o.rec.Changed(ev.Installation.GetID(), ev.Repository) // first, so the error is filed under the repository
	if err != nil {
		o.rec.Failed(ev.Repository.GetFullName(), fmt.Sprintf("%s delivery %s", eventType, deliveryID), err)
	}
	return err
}
