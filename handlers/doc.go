// Package handlers holds one go-githubapp EventHandler per GitHub event. A handler decodes the payload,
// decides whether the event concerns storagebot, and delegates; no business rules live here.
package handlers
