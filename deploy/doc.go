// Package deploy holds the deployment files of storagebot — the Dockerfile, the GitHub App manifest, an example
// configuration and the Kubernetes manifests in kubernetes/ — and, in its test, their offline validation: the
// kustomization rendered in process with kustomize's own library (what `kubectl apply -k` applies) and every
// object decoded strictly against client-go's scheme.
package deploy
