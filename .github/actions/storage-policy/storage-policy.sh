#!/usr/bin/env bash
# The storage-policy Action's step: build storagebot from the action's checkout, fetch what `storagebot check`
# reads, run it on the pull request and write the report to the job summary.
#
# What is fetched, from the checkout's origin (actions/checkout leaves its credentials there):
#   - the default branch's tip, for .github/storagebot.yml: the policy comes from the default branch, as the
#     App reads it, so a PR cannot relax the policy it is checked against;
#   - the other channels' tips, whose trees the cross-channel rules read (no history needed);
#   - the base branch and the PR head, deep enough to hold their merge base: a shallow checkout (actions/checkout's
#     default) is deepened step by step, then unshallowed; `storagebot check` refuses a merge base past the
#     shallow boundary rather than guess, and the step then unshallows and checks once more.
#
# Environment: what Actions sets (GITHUB_EVENT_NAME, GITHUB_BASE_REF, GITHUB_WORKSPACE, GITHUB_STEP_SUMMARY,
# RUNNER_TEMP) and what action.yml passes from the event (STORAGEBOT_PR_NUMBER, STORAGEBOT_PR_HEAD_SHA,
# STORAGEBOT_PR_TITLE, STORAGEBOT_DEFAULT_BRANCH, STORAGEBOT_PATH, STORAGEBOT_FETCH_DEPTH).
#
# Exit status: 0 when the check passes (or the PR targets no channel branch), 1 when it fails, 2 when it could
# not run (the reason is in the log and the job summary).
set -euo pipefail

action_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$action_dir/../../.." && pwd)
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
tmp=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/storage-policy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# cannot_run reports why the check could not run, in the log and the job summary, and exits 2.
cannot_run() {
  echo "::error title=storage-policy::$1"
  { echo "## ⚠️ storage-policy could not run"; echo; echo "$1"; } >>"$summary"
  exit 2
}

case "${GITHUB_EVENT_NAME:-}" in
  pull_request | pull_request_target) ;;
  *) cannot_run "storage-policy checks pull requests: run it on \`pull_request\` events, not \`${GITHUB_EVENT_NAME:-(no event)}\`." ;;
esac
for v in GITHUB_BASE_REF STORAGEBOT_PR_NUMBER STORAGEBOT_PR_HEAD_SHA STORAGEBOT_DEFAULT_BRANCH; do
  if [ -z "${!v:-}" ]; then
    cannot_run "$v is empty: the step runs from action.yml on a pull_request event, which sets it."
  fi
done
if ! [[ $STORAGEBOT_PR_HEAD_SHA =~ ^[0-9a-f]{40}$ ]]; then
  cannot_run "STORAGEBOT_PR_HEAD_SHA is not a commit SHA."
fi
if ! [[ ${STORAGEBOT_FETCH_DEPTH:-64} =~ ^[1-9][0-9]*$ ]]; then
  cannot_run "fetch-depth \`${STORAGEBOT_FETCH_DEPTH}\` is not a positive number of commits."
fi

repo=${GITHUB_WORKSPACE:-$PWD}/${STORAGEBOT_PATH:-.}
if ! git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  cannot_run "\`${STORAGEBOT_PATH:-.}\` is not a git checkout: run actions/checkout before this action (its \`path\` input is this one's)."
fi
git() { command git -C "$repo" "$@"; }

echo "::group::Build storagebot"
if ! command -v go >/dev/null; then
  cannot_run "Go is not on PATH: leave the action's setup-go input at \"true\", or set Go up before it."
fi
bin=$tmp/storagebot
if ! (cd "$source_dir" && go build -o "$bin" ./cmd/storagebot); then
  cannot_run "building storagebot from $source_dir failed (see the log above)."
fi
"$bin" version
echo "::endgroup::"

echo "::group::Fetch the configuration, the channels, the base and the PR head"
config_ref=refs/remotes/origin/$STORAGEBOT_DEFAULT_BRANCH
base_ref=refs/remotes/origin/$GITHUB_BASE_REF
head_ref=refs/remotes/pull/$STORAGEBOT_PR_NUMBER/head
tip=()
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  tip=(--depth=1)
fi
fetch() {
  if ! git fetch --no-tags --quiet origin "$@"; then
    cannot_run "\`git fetch origin $*\` failed (see the log above): does the checkout's origin still hold it?"
  fi
}
fetch "${tip[@]}" "+refs/heads/$STORAGEBOT_DEFAULT_BRANCH:$config_ref"
if ! channels=$("$bin" check --repo "$repo" --config-rev "$config_ref" --list-channels 2>"$tmp/stderr"); then
  cannot_run "$(cat "$tmp/stderr")"
fi
channel=""
pins=()
specs=()
names=()
while read -r name branch; do
  names+=("$name ($branch)")
  if [ "$branch" = "$GITHUB_BASE_REF" ]; then
    channel=$name
  else
    pins+=(--ref "$name=refs/remotes/origin/$branch")
    specs+=("+refs/heads/$branch:refs/remotes/origin/$branch")
  fi
done <<<"$channels"
if [ -z "$channel" ]; then
  echo "::endgroup::"
  msg="This pull request targets \`$GITHUB_BASE_REF\`, which is no channel branch (channels: ${names[*]}); storage-policy checks only pull requests into channel branches."
  echo "$msg"
  { echo "## storage-policy: nothing to check"; echo; echo "$msg"; } >>"$summary"
  exit 0
fi
# The other channels first: fetched at depth 1 they would cut history already fetched deeper.
fetch "${tip[@]}" "${specs[@]}"
pair=("+refs/heads/$GITHUB_BASE_REF:$base_ref" "+$STORAGEBOT_PR_HEAD_SHA:$head_ref")
if [ "${#tip[@]}" -eq 0 ]; then
  fetch "${pair[@]}"
else
  depth=${STORAGEBOT_FETCH_DEPTH:-64}
  fetch --depth="$depth" "${pair[@]}"
  while ! git merge-base "$base_ref" "$head_ref" >/dev/null && [ "$depth" -lt 16384 ]; do
    depth=$((depth * 4))
    echo "No merge base of $GITHUB_BASE_REF and the PR head in the last commits fetched: fetching $depth."
    fetch --depth="$depth" "${pair[@]}"
  done
fi
echo "::endgroup::"

check() {
  "$bin" check --repo "$repo" --channel "$channel" --base "$base_ref" --head "$head_ref" "${pins[@]}" \
    --config-rev "$config_ref" --title "${STORAGEBOT_PR_TITLE-}" --format markdown >"$tmp/report.md" 2>"$tmp/stderr"
}
status=0
check || status=$?
if [ "$status" -eq 2 ] && [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  # storagebot check refuses history it cannot see (a merge base past the shallow boundary): fetch it all.
  echo "storagebot check: $(cat "$tmp/stderr")"
  echo "Fetching the whole history of $GITHUB_BASE_REF and the PR head (git fetch --unshallow), then checking again."
  fetch --unshallow "${pair[@]}"
  status=0
  check || status=$?
fi

case "$status" in
  0 | 1)
    cat "$tmp/report.md" >>"$summary"
    cat "$tmp/report.md"
    if [ "$status" -eq 1 ]; then
      echo "::error title=storage-policy::$(head -n 1 "$tmp/report.md" | sed 's/^## ❌ //'): see the job summary for every finding and how to fix it."
    fi
    exit "$status"
    ;;
  *)
    cannot_run "storagebot check could not run: $(cat "$tmp/stderr")"
    ;;
esac
