//go:build !unix

package storage

import (
	"io"
	"os"
)

// mapFile reads through the file where memory mapping is not available.
func mapFile(f *os.File, _ int64) (io.ReaderAt, io.Closer, error) {
	return f, f, nil
}
