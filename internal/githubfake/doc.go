// Package githubfake is a faithful fake of api.github.com for end-to-end tests.
//
// It runs an httptest server that serves the REST routes storagebot uses (git data, contents, pulls,
// issues, check runs, collaborator permission, app installation tokens), holding real git objects in
// go-git in-memory storage, and it emits signed webhooks shaped like GitHub's own (validated in this
// package's tests against octokit's webhook schemas). Every route it serves is a real GitHub route
// (checked against testdata/endpoints.txt), calls are counted per route, and faults (status codes,
// Retry-After, latency, dropped responses) can be injected on demand.
//
// Decisions worth knowing:
//   - Every request except the app endpoints needs an installation token minted by
//     POST /app/installations/{installation_id}/access_tokens; app endpoints need an RS256 JWT signed
//     with PrivateKeyPEM and issued for AppID. Anything else answers 401.
//   - The App manifest flow (manifest.go) is modelled with the github.com pages it goes through (under
//     WebURL) and POST /app-manifests/{code}/conversions; with Options.Unregistered the App exists only
//     once that flow has registered it.
//   - Webhooks caused by a REST call (opening a PR, commenting, merging) are delivered before that
//     call's response is written, so a test sees them in Deliveries as soon as the call returns.
//   - Check runs never emit webhooks; RerequestCheckRun only accepts completed runs, like GitHub.
//   - Check runs belong to the App that created them: REST-created runs are the fake App's, and
//     CreateCheckRunAs makes runs of another App, which PATCH answers 403. Annotations are appended on
//     every update, at most 50 per request (422 beyond). Listing honours app_id, check_name, status and
//     filter (latest, the default, keeps each App's newest run of a name).
//   - Fork PRs (PROptions.Fork) keep their head commits in the base repository's store; their head.repo is
//     the fork, and check runs on their head list no pull_requests, like GitHub's.
//   - POST /graphql answers the git-data query shape the bot sends, from the same git objects (graphql.go):
//     aliases, object(oid:|expression:), fragments on Commit, Tree and Blob; anything else is refused in
//     GitHub's error shapes. It is counted as the route GraphQLRoute, needs an installation token, and reports
//     a rate limit of its own (X-RateLimit-Resource: graphql).
//   - Merges are conflict-free three-way tree merges: a path changed differently on both sides is a
//     conflict (409), never a content-level merge.
package githubfake
