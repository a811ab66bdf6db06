// Package handlers holds one go-githubapp EventHandler per GitHub event. A handler decodes the payload,
// decides whether the event concerns storagebot, builds the repository context once (the installation's
// API and the repository's configuration) and delegates to a service; no business rules live here.
package handlers
