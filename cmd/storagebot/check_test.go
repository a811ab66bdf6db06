package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneCheckGC: `check` collects less often unless GOGC says otherwise.
func TestTuneCheckGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	tests := []struct {
		name  string
		set   bool
		value string
		want  int
	}{
		{name: "GOGC unset", want: checkGCPercent},
		{name: "GOGC set", set: true, value: "50", want: 100},
		{name: "GOGC set empty", set: true, want: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", "") // restored after the test
			if tc.set {
				os.Setenv("GOGC", tc.value)
			} else {
				os.Unsetenv("GOGC")
			}
			debug.SetGCPercent(100)
			tuneCheckGC()
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GOGC after tuneCheckGC = %d, want %d", got, tc.want)
			}
		})
	}
}
