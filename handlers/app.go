package handlers

import (
	"github.com/palantir/go-githubapp/githubapp"
)

// Deps are what the handlers delegate to. Every field is shared by all handlers and safe for concurrent use.
type Deps struct {
	// Clients creates GitHub clients authenticated as an installation.
	Clients githubapp.ClientCreator
}

// App is the set of event handlers storagebot registers with the dispatcher.
type App struct {
	deps Deps
}

// New builds the handlers over deps.
func New(deps Deps) *App {
	return &App{deps: deps}
}

// Handlers returns one handler per event storagebot reacts to.
func (a *App) Handlers() []githubapp.EventHandler {
	return []githubapp.EventHandler{
		&PullRequest{deps: a.deps},
		&Installation{},
	}
}
