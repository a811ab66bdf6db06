// Package internal groups the pieces shared by the binary, the handlers and the tests: the storage model
// (storage), repository configuration (repoconfig), the slash-command parser (commands), the services
// (prcheck, commandrun, promotion, reconcile), the repository context of one event (repoctx), the GitHub
// API behind the services' narrow interfaces (githubapi), the GitHub client (ghclient), the HTTP server
// wiring (server) and the fake GitHub used by end-to-end tests (githubfake). docs/architecture.md §2
// has one paragraph per package and the flow of a delivery.
package internal
