package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/status"
	"github.com/storagebot/storagebot/policy"
)

// Title is the title of the dashboard issue; Label marks it, so it is listed without reading every issue.
const (
	Title = "Storage dashboard"
	Label = "storage/dashboard"
)

// MaxBodyLength is GitHub's limit on an issue body, in characters; over it GitHub answers 422.
const MaxBodyLength = 65536

// marker is the sealed record at the top of the dashboard's body: which repository it belongs to and the
// digest of the body the bot wrote after it, so an edit by anyone else shows.
type marker struct {
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
}

var markerPattern = regexp.MustCompile(`\A<!-- storagebot:dashboard ([A-Za-z0-9_-]+) (\{[^>]*?\}) -->\n`)

// key scopes the server's marker key to one repository's dashboard, so a marker copied from another
// repository (or from a PR body, sealed for another purpose) does not verify.
func key(root seal.Key, repo string) seal.Key {
	return root.For("dashboard", strings.ToLower(repo))
}

// seal prefixes content with the marker of repo under root.
func sealBody(root seal.Key, repo, content string) string {
	data, err := json.Marshal(marker{Repo: strings.ToLower(repo), Digest: digest(content)})
	if err != nil {
		panic(fmt.Sprintf("dashboard: marshal marker: %v", err)) // two strings always marshal
	}
	return fmt.Sprintf("<!-- storagebot:dashboard %s %s -->\n", key(root, repo).Sign(data), data) + content
}

// parsed is what a body's marker says: ok when it is sealed for repo under root; edited when the content
// after it is not what the bot wrote.
type parsed struct {
	ok, edited bool
}

func parseBody(root seal.Key, repo, body string) parsed {
	m := markerPattern.FindStringSubmatch(body)
	if m == nil || !key(root, repo).Verify([]byte(m[2]), m[1]) {
		return parsed{}
	}
	var mk marker
	if err := json.Unmarshal([]byte(m[2]), &mk); err != nil || mk.Repo != strings.ToLower(repo) {
		return parsed{}
	}
	return parsed{ok: true, edited: mk.Digest != digest(body[len(m[0]):])}
}

func digest(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// Render is the dashboard's body for repo, sealed, within GitHub's limit: when every row does not fit, each
// table keeps its first rows and says how many more there are, and statusURL (if any) has them all. Nothing
// in it changes unless the facts do (no "read at" time, no ages), so an unchanged repository means no edit.
func Render(root seal.Key, repo status.Repository, statusURL string) string {
	for _, rows := range []int{-1, 500, 200, 100, 50, 20, 10, 5, 1} {
		body := sealBody(root, repo.FullName, content(repo, rows, statusURL))
		if utf8.RuneCountInString(body) <= MaxBodyLength {
			return body
		}
	}
	// Only the errors' causes are unbounded in length: cut the text, keeping the marker valid.
	c := content(repo, 1, statusURL)
	note := "\n\n_(shortened to fit GitHub's limit on issue bodies)_\n"
	if r := []rune(c); len(r) > MaxBodyLength-utf8.RuneCountInString(note)-300 {
		c = string(r[:MaxBodyLength-utf8.RuneCountInString(note)-300]) + note
	}
	return sealBody(root, repo.FullName, c)
}

// content renders the facts; rows < 0 means every row.
func content(repo status.Repository, rows int, statusURL string) string {
	var b strings.Builder
	b.WriteString("storagebot keeps this issue up to date with what it knows about this storage repository. ")
	b.WriteString("Edits are overwritten; to turn it off, set `dashboard: false` in `.github/storagebot.yml`.")
	if statusURL != "" {
		fmt.Fprintf(&b, " Live view: %s", statusURL)
	}
	b.WriteString("\n")
	if repo.ConfigError != "" {
		fmt.Fprintf(&b, "\n> [!WARNING]\n> `.github/storagebot.yml` is invalid, so nothing is evaluated: %s\n", cell(repo.ConfigError))
	}

	b.WriteString("\n## Channels\n\n| channel | branch | head |\n|---|---|---|\n")
	for _, ch := range repo.Channels {
		fmt.Fprintf(&b, "| %s | `%s` | [`%s`](%s) |\n", cell(ch.Name), cell(ch.Branch), policy.ShortSHA(ch.Commit), ch.CommitURL)
	}

	var twoChannels []string
	for _, p := range repo.Pending {
		state := fmt.Sprintf("identical: removal from %s pending, no removal PR open yet", cell(p.Lower))
		if p.RemovalPR != nil {
			state = fmt.Sprintf("identical: removal from %s pending in [#%d](%s)", cell(p.Lower), p.RemovalPR.Number, p.RemovalPR.URL)
		}
		twoChannels = append(twoChannels, fmt.Sprintf("| %s@%s | %s and %s | %s |\n", cell(p.Package), cell(p.Version), cell(p.Lower), cell(p.Higher), state))
	}
	for _, d := range repo.Drift {
		twoChannels = append(twoChannels, fmt.Sprintf("| %s@%s | %s and %s | **drift**: different contents (trees `%s` and `%s`); the %s copy is shadowed, fix it by hand |\n",
			cell(d.Package), cell(d.Version), cell(d.Lower), cell(d.Higher), policy.ShortSHA(d.LowerTree), policy.ShortSHA(d.HigherTree), cell(d.Lower)))
	}
	writeTable(&b, "Versions in two channels", "None.", "| version | channels | state |\n|---|---|---|\n", firstRows(twoChannels, rows))

	var inFlight []string
	for _, f := range repo.InFlight {
		inFlight = append(inFlight, fmt.Sprintf("| [#%d](%s) %s | %s | %s | %s | %s |\n", f.PR.Number, f.PR.URL, cell(f.Title), f.Kind, cell(f.Target),
			cell(strings.Join(f.Versions, ", ")), f.OpenedAt.UTC().Format("2006-01-02 15:04 UTC")))
	}
	writeTable(&b, "Promotions and removals in flight", "None.", "| PR | kind | into | versions | opened |\n|---|---|---|---|---|\n", firstRows(inFlight, rows))

	var verdicts []string
	for _, v := range repo.Verdicts {
		verdicts = append(verdicts, fmt.Sprintf("| [#%d](%s) %s | `%s` | `%s` | %s |\n", v.PR.Number, v.PR.URL, cell(v.Title), cell(v.Base), policy.ShortSHA(v.HeadSHA), verdictCell(v)))
	}
	writeTable(&b, "storage-policy verdicts on open PRs", "No open PR into a channel branch.", "| PR | into | head | verdict |\n|---|---|---|---|\n", firstRows(verdicts, rows))

	var errs []string
	for _, e := range repo.Errors {
		errs = append(errs, fmt.Sprintf("| %s | %s | %s |\n", e.At.UTC().Format("2006-01-02 15:04:05 UTC"), cell(clip(e.What, 200)), cell(clip(e.Cause, 500))))
	}
	writeTable(&b, "Recent errors", "None.", "| when | doing | cause |\n|---|---|---|\n", lastRows(errs, rows)) // the newest
	return b.String()
}

// clip shortens s to at most n characters.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// shownRows is the part of a table's rows the page has room for, and how many it leaves out.
type shownRows struct {
	rows    []string
	omitted int
}

// firstRows keeps the first limit rows; limit < 0 keeps them all.
func firstRows(rows []string, limit int) shownRows {
	if limit < 0 || len(rows) <= limit {
		return shownRows{rows: rows}
	}
	return shownRows{rows: rows[:limit], omitted: len(rows) - limit}
}

// lastRows keeps the last limit rows; limit < 0 keeps them all.
func lastRows(rows []string, limit int) shownRows {
	if limit < 0 || len(rows) <= limit {
		return shownRows{rows: rows}
	}
	return shownRows{rows: rows[len(rows)-limit:], omitted: len(rows) - limit}
}

// writeTable writes a titled section: the Markdown table of shown (header first) and how many rows it left
// out, or none when there is no row at all.
func writeTable(b *strings.Builder, title, none, header string, shown shownRows) {
	fmt.Fprintf(b, "\n## %s\n\n", title)
	if len(shown.rows)+shown.omitted == 0 {
		b.WriteString(none + "\n")
		return
	}
	b.WriteString(header)
	for _, r := range shown.rows {
		b.WriteString(r)
	}
	if shown.omitted > 0 {
		fmt.Fprintf(b, "\n…and %d more.\n", shown.omitted)
	}
}

// verdictCell links a PR's storage-policy run with its conclusion (its status while it runs) and summary.
func verdictCell(v status.Verdict) string {
	if v.RunURL == "" {
		return "no run yet"
	}
	word := v.Conclusion
	if word == "" {
		word = v.Status
	}
	verdict := fmt.Sprintf("[%s](%s)", cell(word), v.RunURL)
	if v.Summary != "" {
		verdict += ": " + cell(v.Summary)
	}
	return verdict
}

// cell makes text safe in a Markdown table cell: no line breaks, no column separators, no HTML (so no
// text from a PR title can open a comment or forge a marker).
var cellReplacer = strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "<", "&lt;", ">", "&gt;")

func cell(s string) string { return cellReplacer.Replace(s) }
