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

// mapWhole reads the whole file at path where memory mapping is not available.
func mapWhole(path string) (data []byte, release func() error, err error) {
	data, err = os.ReadFile(path)
	return data, func() error { return nil }, err
}
