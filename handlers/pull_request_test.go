package handlers

import (
	"testing"

	"github.com/google/go-github/v50/github"
)

func TestEditMatters(t *testing.T) {
	from := &github.EditTitle{From: github.String("old")}
	tests := []struct {
		name    string
		changes *github.EditChange
		want    bool
	}{
		{"no changes object", nil, false},
		{"body only", &github.EditChange{Body: &github.EditBody{From: github.String("old")}}, false},
		{"title", &github.EditChange{Title: from}, true},
		{"base", &github.EditChange{Base: &github.EditBase{Ref: &github.EditRef{From: github.String("snapshot")}}}, true},
		{"title and body", &github.EditChange{Title: from, Body: &github.EditBody{}}, true},
	}
	for _, tc := range tests {
		if got := editMatters(tc.changes); got != tc.want {
			t.Errorf("%s: editMatters = %v, want %v", tc.name, got, tc.want)
		}
	}
}
