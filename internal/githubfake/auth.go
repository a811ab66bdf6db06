package githubfake

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/storagebot/storagebot/internal/appmanifest"
)

// authorize checks the request's credentials for the route's kind.
func (s *Server) authorize(r *http.Request, kind authKind) error {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	scheme = strings.ToLower(scheme)
	if kind == authNone {
		return nil
	}
	if kind == authApp {
		if scheme != "bearer" {
			return errorf(http.StatusUnauthorized, "A JSON web token could not be decoded")
		}
		return s.verifyJWT(cred, time.Now())
	}
	if scheme != "token" && scheme != "bearer" {
		return errorf(http.StatusUnauthorized, "Requires authentication")
	}
	s.mu.Lock()
	exp, ok := s.tokens[cred]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		return errorf(http.StatusUnauthorized, "Bad credentials")
	}
	return nil
}

// verifyJWT checks an app JWT the way GitHub does: RS256 with the app key, iss = app ID, a current
// exp at most ten minutes after iat.
func (s *Server) verifyJWT(token string, now time.Time) error {
	bad := func(why string) error {
		return errorf(http.StatusUnauthorized, "A JSON web token could not be decoded: %s", why)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return bad("not three parts")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return bad("header is not RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return bad("signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return bad("signature does not match the app key")
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return bad("claims")
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	s.mu.Lock()
	unregistered := s.unregistered
	s.mu.Unlock()
	if iss != strconv.FormatInt(s.appID, 10) || unregistered {
		return errorf(http.StatusUnauthorized, "Integration not found")
	}
	if claims.Exp <= now.Unix() {
		return errorf(http.StatusUnauthorized, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if claims.Iat > now.Unix()+60 || claims.Exp-claims.Iat > 660 {
		return errorf(http.StatusUnauthorized, "'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("decode segment: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse segment: %w", err)
	}
	return nil
}

func (s *Server) checkInstallation(c *call) error {
	id, err := c.intParam("installation_id")
	if err != nil || id != s.installationID {
		return errNotFound
	}
	return nil
}

// SetTokenLifetime sets how long installation tokens minted from now on stay valid (GitHub: one hour).
// ghinstallation renews a token a minute before it expires, so a lifetime under a minute makes the client
// fetch a new token for every request: token rotation on demand.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// TokensIssued is how many installation tokens were minted.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// createAccessToken mints an installation token valid for the token lifetime (an hour by default).
func (s *Server) createAccessToken(c *call) (int, any, error) {
	if err := s.checkInstallation(c); err != nil {
		return 0, nil, err
	}
	token := "ghs_" + randomHex(18)
	exp := time.Now().Add(s.tokenTTL).UTC().Truncate(time.Second)
	s.tokens[token] = exp
	s.tokensIssued++
	return http.StatusCreated, map[string]any{
		"token":                token,
		"expires_at":           isoTime(exp),
		"permissions":          appPermissions(),
		"repository_selection": "all",
	}, nil
}

// listInstallationRepos lists the repositories the installation can access (all of them).
// Handlers run under s.mu.
func (s *Server) listInstallationRepos(c *call) (int, any, error) {
	repos := make([]any, 0, len(s.repoOrder))
	for _, r := range s.repoOrder {
		repos = append(repos, r.repositoryJSON())
	}
	return http.StatusOK, map[string]any{"total_count": len(repos), "repository_selection": "all", "repositories": repos}, nil
}

// getApp describes the authenticated App (GET /app), as bots do to learn their own login.
func (s *Server) getApp(c *call) (int, any, error) {
	return http.StatusOK, s.appJSON(), nil
}

func (s *Server) listInstallations(c *call) (int, any, error) {
	return http.StatusOK, []any{s.installationJSON()}, nil
}

func (s *Server) getInstallation(c *call) (int, any, error) {
	if err := s.checkInstallation(c); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.installationJSON(), nil
}

func (s *Server) getRepoInstallation(c *call) (int, any, error) {
	return http.StatusOK, s.installationJSON(), nil
}

// appPermissions are the installation's permissions: exactly what the App manifest asks for, from the one
// table the manifest and the handlers are held to.
func appPermissions() map[string]string { return appmanifest.PermissionMap() }

// appEvents are the events the App subscribes to, from the same table.
func appEvents() []string { return appmanifest.SubscribedEvents() }

// installationJSON describes the single installation. Callers hold s.mu.
func (s *Server) installationJSON() map[string]any {
	account := "storage-org"
	if len(s.repoOrder) > 0 {
		account = s.repoOrder[0].owner
	}
	id := s.installationID
	return map[string]any{
		"id":                   id,
		"account":              s.userJSON(account),
		"repository_selection": "all",
		"access_tokens_url":    fmt.Sprintf("%sapp/installations/%d/access_tokens", s.URL(), id),
		"repositories_url":     s.URL() + "installation/repositories",
		"html_url":             fmt.Sprintf("%sorganizations/%s/settings/installations/%d", s.WebURL(), account, id),
		"app_id":               s.appID,
		"app_slug":             appSlug,
		"target_id":            userID(account),
		"target_type":          "Organization",
		"permissions":          appPermissions(),
		"events":               appEvents(),
		"created_at":           isoTime(s.started),
		"updated_at":           isoTime(s.started),
		"single_file_name":     nil,
	}
}
