package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
)

// Installation handles installation events: it logs who installed or removed the App, so an operator can see
// which repositories the bot now guards.
type Installation struct{}

var _ githubapp.EventHandler = (*Installation)(nil)

// Handles names the event.
func (h *Installation) Handles() []string { return []string{"installation"} }

// Handle logs the installation change.
func (h *Installation) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.InstallationEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode installation payload: %w", err)
	}
	repos := make([]string, 0, len(event.Repositories))
	for _, r := range event.Repositories {
		repos = append(repos, r.GetFullName())
	}
	zerolog.Ctx(ctx).Info().Str("action", event.GetAction()).
		Int64(githubapp.LogKeyInstallationID, event.GetInstallation().GetID()).
		Str("account", event.GetInstallation().GetAccount().GetLogin()).
		Strs("repositories", repos).Msg("installation changed")
	return nil
}
