//go:build unix

package storage

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
)

// mapFile maps a pack or index file read-only, as git does: a look-up in an index is a binary search of a
// few dozen probes, and one pread system call per probe made the reader's cost on a large change mostly
// system time. Pack files are immutable once written, so the mapping never changes under the reader.
func mapFile(f *os.File, size int64) (io.ReaderAt, io.Closer, error) {
	if size == 0 {
		return bytes.NewReader(nil), f, nil
	}
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("map %s: %d bytes do not fit in memory", f.Name(), size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return f, f, nil // fall back to reads
	}
	return bytes.NewReader(data), unmapper{data: data, f: f}, nil
}

type unmapper struct {
	data []byte
	f    *os.File
}

func (u unmapper) Close() error {
	err := syscall.Munmap(u.data)
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mapWhole maps the whole file at path read-only, as git maps packed-refs: a check looks up a few names in
// a file that holds every refs/pull/* of a GitHub clone, so copying it into the heap cost more than the
// look-ups. Git replaces packed-refs by renaming a new file over it, so the mapping never changes under the
// reader. The data stays valid until release is called. It falls back to reading the file.
func mapWhole(path string) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 || int64(int(size)) != size {
		data, err := io.ReadAll(f)
		return data, func() error { return nil }, err
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		data, err := io.ReadAll(f)
		return data, func() error { return nil }, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
