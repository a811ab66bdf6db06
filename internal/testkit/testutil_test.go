package testkit

import (
	"fmt"
	"sync"
	"testing"
)

func TestDuplicateJSONKey(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"a":1,"b":{"a":2},"c":[1,"a"]}`, ""},
		{`{"a":1,"b":2,"a":3}`, "a"},
		{`{}`, ""},
	} {
		if got := DuplicateJSONKey(t, tc.line); got != tc.want {
			t.Errorf("DuplicateJSONKey(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestSyncBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var buf SyncBuffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fmt.Fprintf(&buf, "%d", i)
		}(i)
	}
	wg.Wait()
	if n := len(buf.String()); n != 8 {
		t.Errorf("buffer holds %d bytes after 8 one-byte writes: %q", n, buf.String())
	}
}
