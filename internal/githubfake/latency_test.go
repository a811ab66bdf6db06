package githubfake

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// bigTree commits a repository whose default branch holds dirs directories of files files each.
func bigTree(t *testing.T, s *Server, dirs, files int) *Repo {
	t.Helper()
	repo := s.CreateRepo("o", "r", "main")
	content := map[string]*File{}
	for d := 0; d < dirs; d++ {
		for f := 0; f < files; f++ {
			content[fmt.Sprintf("d%02d/f%02d.txt", d, f)] = &File{Content: []byte(fmt.Sprintf("%d/%d\n", d, f))}
		}
	}
	if _, err := repo.Commit("main", "files", content); err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestRecursiveTreeTruncation(t *testing.T) {
	// README.md (every new repository's) and 4 directories of 5 files: 25 entries in the recursive listing.
	const all = 1 + 4 + 4*5
	cases := []struct {
		name          string
		maxEntries    int
		maxBytes      int
		wantEntries   int // -1: check only that the listing is shorter than all
		wantTruncated bool
	}{
		{name: "GitHub's caps", wantEntries: all},
		{name: "entry cap reached exactly", maxEntries: all, wantEntries: all},
		{name: "entry cap", maxEntries: 10, wantEntries: 10, wantTruncated: true},
		{name: "byte cap", maxBytes: 2000, wantEntries: -1, wantTruncated: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{TreeMaxEntries: tc.maxEntries, TreeMaxBytes: tc.maxBytes})
			defer s.Close()
			repo := bigTree(t, s, 4, 5)
			client, err := s.InstallationClient()
			if err != nil {
				t.Fatal(err)
			}
			root := repo.BranchSHA("main")
			tree, _, err := client.Git.GetTree(context.Background(), "o", "r", root, true)
			if err != nil {
				t.Fatal(err)
			}
			got := len(tree.Entries)
			if tc.wantEntries >= 0 && got != tc.wantEntries {
				t.Errorf("recursive listing has %d entries, want %d", got, tc.wantEntries)
			}
			if tc.wantEntries < 0 && (got == 0 || got >= all) {
				t.Errorf("recursive listing has %d entries, want some but fewer than %d", got, all)
			}
			if tree.GetTruncated() != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", tree.GetTruncated(), tc.wantTruncated)
			}
			if tc.maxBytes > 0 {
				b, err := json.Marshal(tree.Entries)
				if err != nil {
					t.Fatal(err)
				}
				// go-github drops fields GitHub sends (url), so its re-encoding is no larger than the listing.
				if len(b) > tc.maxBytes {
					t.Errorf("listing is %d bytes of entries, over the %d-byte cap", len(b), tc.maxBytes)
				}
			}
			// A single-level listing is never truncated, whatever the caps.
			flat, _, err := client.Git.GetTree(context.Background(), "o", "r", root, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(flat.Entries) != 5 || flat.GetTruncated() {
				t.Errorf("single-level listing: %d entries, truncated %v; want 5, false", len(flat.Entries), flat.GetTruncated())
			}
		})
	}
}

func TestLatencyIsPerRequestAndConcurrent(t *testing.T) {
	const rtt = 100 * time.Millisecond
	s := New(Options{Latency: rtt, LatencyJitter: 20 * time.Millisecond, LatencySeed: 1})
	defer s.Close()
	repo := bigTree(t, s, 1, 1)
	client, err := s.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	root := repo.BranchSHA("main")
	if _, _, err := client.Git.GetTree(context.Background(), "o", "r", root, false); err != nil {
		t.Fatal(err) // also fetches the installation token
	}
	start := time.Now()
	if _, _, err := client.Git.GetTree(context.Background(), "o", "r", root, false); err != nil {
		t.Fatal(err)
	}
	if one := time.Since(start); one < rtt {
		t.Errorf("one request took %v, want at least the %v round trip", one, rtt)
	}
	s.ResetCalls()
	start = time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := client.Git.GetTree(context.Background(), "o", "r", root, false); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Eight concurrent requests wait their round trips together, not one after another.
	if eight := time.Since(start); eight >= 4*rtt {
		t.Errorf("8 concurrent requests took %v, want well under 8 round trips of %v", eight, rtt)
	}
	if n := s.MaxInFlight(); n < 2 {
		t.Errorf("MaxInFlight = %d, want the concurrent requests counted together", n)
	}
}
