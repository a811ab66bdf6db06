// Package internal groups the pieces shared by the binary, the handlers and the tests: the storage model
// (storage), repository configuration (repoconfig), the slash-command parser (commands), the GitHub client
// (ghclient), the HTTP server wiring (server) and the fake GitHub used by end-to-end tests (githubfake).
package internal
