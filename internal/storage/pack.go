package storage

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// The object reader below is written for hostile input: a clone given to `storagebot check` may come from
// anywhere, so every size read from a file is checked against the file and against maxObjectSize before it
// decides an allocation, every offset is checked against the pack, and delta chains are walked iteratively
// with a depth bound and cycle detection. A corrupt pack gives an error, never a panic, a huge allocation or
// a hang (FuzzPackRead exercises this).

// maxObjectSize bounds the objects the local reader inflates. A storage repository holds manifests, docs and
// images of a few megabytes at most; the bound keeps a pack whose headers lie from costing gigabytes.
const maxObjectSize = 256 << 20

// maxDeltaDepth bounds delta chains: git never writes chains deeper than 4095 (pack.depth is clamped there).
const maxDeltaDepth = 4095

// errCorrupt marks objects or files that are not what git would write.
var errCorrupt = errors.New("corrupt")

// Object types as pack files number them (and as loose object headers name them).
type objectType int8

const (
	objCommit   objectType = 1
	objTree     objectType = 2
	objBlob     objectType = 3
	objTag      objectType = 4
	objOfsDelta objectType = 6
	objRefDelta objectType = 7
)

func (t objectType) String() string {
	switch t {
	case objCommit:
		return "commit"
	case objTree:
		return "tree"
	case objBlob:
		return "blob"
	case objTag:
		return "tag"
	}
	return fmt.Sprintf("type %d", int(t))
}

// oid is a SHA-1 object name.
type oid [20]byte

func (h oid) String() string { return fmt.Sprintf("%x", h[:]) }

const (
	idxHeaderSize = 8
	idxFanoutSize = 256 * 4
	packTrailer   = 20
)

var idxMagic = []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}

// packFile is one pack and its version 2 index, read on demand: a look-up is a binary search in the index
// file, so opening a repository costs nothing however many objects it holds.
type packFile struct {
	idx, pack   io.ReaderAt // mapped files (see mapFile), read with ReadAt only: safe for concurrent use
	idxName     string
	packName    string
	closers     []io.Closer
	packSize    int64
	idxSize     int64
	fanout      [256]uint32
	maxSize     int64
	zlibReaders sync.Pool // of *inflater

	// bases keeps recently inflated delta bases by offset: consecutive versions of a tree or manifest
	// share their chain, and without the cache each read would inflate it again from the start.
	mu    sync.Mutex
	bases map[int64]cachedBase
	order []int64
}

type cachedBase struct {
	typ  objectType
	data []byte
}

// deltaBaseCacheEntries bounds the delta bases a pack keeps.
const deltaBaseCacheEntries = 256

// openPack opens a pack by its index path. Index versions other than 2 (git has written version 2 since
// 2008) are refused with an error saying how to rewrite them.
func openPack(idxPath string) (*packFile, error) {
	packPath := strings.TrimSuffix(idxPath, ".idx") + ".pack"
	idx, err := os.Open(idxPath)
	if err != nil {
		return nil, fmt.Errorf("open pack index: %w", err)
	}
	pack, err := os.Open(packPath)
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("open pack: %w", err)
	}
	ist, err1 := idx.Stat()
	pst, err2 := pack.Stat()
	if err := errors.Join(err1, err2); err != nil {
		idx.Close()
		pack.Close()
		return nil, fmt.Errorf("open pack %s: %w", packPath, err)
	}
	idxData, idxCloser, err1 := mapFile(idx, ist.Size())
	packData, packCloser, err2 := mapFile(pack, pst.Size())
	if err := errors.Join(err1, err2); err != nil {
		idx.Close()
		pack.Close()
		return nil, fmt.Errorf("open pack %s: %w", packPath, err)
	}
	p, err := newPackFile(idxData, ist.Size(), idxPath, packData, pst.Size(), packPath, maxObjectSize)
	if err != nil {
		idxCloser.Close()
		packCloser.Close()
		return nil, err
	}
	p.closers = []io.Closer{idxCloser, packCloser}
	return p, nil
}

// newPackFile checks the index header, fan-out table and sizes of both files.
func newPackFile(idx io.ReaderAt, idxSize int64, idxName string, pack io.ReaderAt, packSize int64, packName string, maxSize int64) (*packFile, error) {
	p := &packFile{idx: idx, pack: pack, idxName: idxName, packName: packName, idxSize: idxSize, packSize: packSize,
		maxSize: maxSize, bases: map[int64]cachedBase{}}
	var head [idxHeaderSize + idxFanoutSize]byte
	if _, err := idx.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("read pack index %s: %w (%w)", idxName, errCorrupt, err)
	}
	if !bytes.Equal(head[:idxHeaderSize], idxMagic) {
		return nil, fmt.Errorf("pack index %s is not version 2 (run `git index-pack` on its pack to rewrite it): %w", idxName, errCorrupt)
	}
	var prev uint32
	for i := range p.fanout {
		p.fanout[i] = binary.BigEndian.Uint32(head[idxHeaderSize+4*i:])
		if p.fanout[i] < prev {
			return nil, fmt.Errorf("pack index %s: fan-out table decreases: %w", idxName, errCorrupt)
		}
		prev = p.fanout[i]
	}
	n := int64(p.fanout[255])
	if min := int64(idxHeaderSize+idxFanoutSize) + n*(20+4+4) + 2*20; p.idxSize < min {
		return nil, fmt.Errorf("pack index %s: %d bytes, too short for %d objects: %w", idxName, p.idxSize, n, errCorrupt)
	}
	if p.packSize < 12+packTrailer {
		return nil, fmt.Errorf("pack %s: %d bytes, too short: %w", packName, p.packSize, errCorrupt)
	}
	var ph [12]byte
	if _, err := pack.ReadAt(ph[:], 0); err != nil || string(ph[:4]) != "PACK" {
		return nil, fmt.Errorf("pack %s: no PACK header: %w", packName, errCorrupt)
	}
	return p, nil
}

func (p *packFile) close() {
	for _, c := range p.closers {
		c.Close()
	}
}

// find binary-searches the index for h and returns the object's offset in the pack.
func (p *packFile) find(h oid) (int64, bool, error) {
	lo, hi := p.bucket(h[0])
	var name oid
	for lo < hi {
		mid := lo + (hi-lo)/2
		if err := p.nameAt(mid, &name); err != nil {
			return 0, false, err
		}
		switch c := bytes.Compare(name[:], h[:]); {
		case c == 0:
			off, err := p.offset(mid)
			return off, err == nil, err
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false, nil
}

// bucket is the index range of the names starting with byte b.
func (p *packFile) bucket(b byte) (lo, hi uint32) {
	if b > 0 {
		lo = p.fanout[b-1]
	}
	return lo, p.fanout[b]
}

func (p *packFile) nameAt(i uint32, name *oid) error {
	if _, err := p.idx.ReadAt(name[:], int64(idxHeaderSize+idxFanoutSize)+int64(i)*20); err != nil {
		return fmt.Errorf("read pack index %s: %w", p.idxName, err)
	}
	return nil
}

// withPrefix appends to out the names in the index that start with the hex prefix (at least two digits),
// stopping after limit names.
func (p *packFile) withPrefix(prefix string, out []oid, limit int) ([]oid, error) {
	low, ok := parseOID(prefix + strings.Repeat("0", 40-len(prefix)))
	if !ok {
		return out, fmt.Errorf("object name prefix %q is not hexadecimal", prefix)
	}
	lo, hi := p.bucket(low[0])
	var name oid
	for lo < hi { // lower bound of low
		mid := lo + (hi-lo)/2
		if err := p.nameAt(mid, &name); err != nil {
			return out, err
		}
		if bytes.Compare(name[:], low[:]) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	_, end := p.bucket(low[0])
	for i := lo; i < end && len(out) < limit; i++ {
		if err := p.nameAt(i, &name); err != nil {
			return out, err
		}
		if !strings.HasPrefix(name.String(), prefix) {
			break
		}
		out = append(out, name)
	}
	return out, nil
}

// offset reads the pack offset of the i-th index entry (32-bit table, else the 64-bit one).
func (p *packFile) offset(i uint32) (int64, error) {
	n := int64(p.fanout[255])
	base := int64(idxHeaderSize+idxFanoutSize) + n*(20+4)
	var b [8]byte
	if _, err := p.idx.ReadAt(b[:4], base+int64(i)*4); err != nil {
		return 0, fmt.Errorf("read pack index %s: %w", p.idxName, err)
	}
	off := int64(binary.BigEndian.Uint32(b[:4]))
	if off&0x80000000 != 0 {
		large := base + n*4 + (off&0x7fffffff)*8
		if _, err := p.idx.ReadAt(b[:], large); err != nil {
			return 0, fmt.Errorf("read pack index %s: 64-bit offset %d: %w (%w)", p.idxName, off&0x7fffffff, errCorrupt, err)
		}
		u := binary.BigEndian.Uint64(b[:])
		if u > 1<<62 {
			return 0, fmt.Errorf("read pack index %s: offset %d: %w", p.idxName, u, errCorrupt)
		}
		off = int64(u)
	}
	if off < 12 || off >= p.packSize-packTrailer {
		return 0, fmt.Errorf("pack index %s: offset %d outside the pack: %w", p.idxName, off, errCorrupt)
	}
	return off, nil
}

// entryHeader is what precedes an object's zlib stream in a pack.
type entryHeader struct {
	typ       objectType
	size      int64
	dataStart int64
	baseOff   int64 // objOfsDelta
	baseName  oid   // objRefDelta
}

func (p *packFile) header(off int64) (entryHeader, error) {
	var buf [32]byte
	n, err := p.pack.ReadAt(buf[:], off)
	if n == 0 {
		return entryHeader{}, fmt.Errorf("read object header at %d: %w (%v)", off, errCorrupt, err)
	}
	b := buf[:n]
	i := 0
	next := func() (byte, bool) {
		if i >= len(b) {
			return 0, false
		}
		c := b[i]
		i++
		return c, true
	}
	c, _ := next()
	h := entryHeader{typ: objectType((c >> 4) & 7)}
	size := uint64(c & 0x0f)
	for shift := 4; c&0x80 != 0; shift += 7 {
		var ok bool
		if c, ok = next(); !ok || shift > 56 {
			return h, fmt.Errorf("object header at %d: size does not fit: %w", off, errCorrupt)
		}
		size |= uint64(c&0x7f) << shift
	}
	if size > uint64(p.maxSize) {
		return h, fmt.Errorf("object at %d declares %d bytes, more than the %d bytes storagebot reads: %w", off, size, p.maxSize, errCorrupt)
	}
	h.size = int64(size)
	switch h.typ {
	case objCommit, objTree, objBlob, objTag:
	case objOfsDelta:
		c, ok := next()
		if !ok {
			return h, fmt.Errorf("delta header at %d: %w", off, errCorrupt)
		}
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if c, ok = next(); !ok || rel > 1<<48 {
				return h, fmt.Errorf("delta header at %d: base offset does not fit: %w", off, errCorrupt)
			}
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		// A base always comes before its delta, so walking bases goes strictly backwards and ends.
		if rel <= 0 || rel > off-12 {
			return h, fmt.Errorf("delta at %d: base offset %d outside the pack: %w", off, off-rel, errCorrupt)
		}
		h.baseOff = off - rel
	case objRefDelta:
		if len(b)-i < 20 {
			return h, fmt.Errorf("delta header at %d: %w", off, errCorrupt)
		}
		copy(h.baseName[:], b[i:i+20])
		i += 20
	default:
		return h, fmt.Errorf("unknown object type %d at offset %d: %w", h.typ, off, errCorrupt)
	}
	h.dataStart = off + int64(i)
	return h, nil
}

// inflate reads the zlib stream at off, which must inflate to exactly size bytes. The buffer grows with the
// data actually inflated, so a header that lies about the size costs nothing.
func (p *packFile) inflate(off, size int64) ([]byte, error) {
	// The buffered reader is pooled with the inflater: a check inflates dozens of small objects, and a
	// fresh 4 KB buffer for each was a good part of what it allocated.
	in, _ := p.zlibReaders.Get().(*inflater)
	if in == nil {
		in = &inflater{src: bufio.NewReaderSize(nil, 4096)}
	}
	in.src.Reset(io.NewSectionReader(p.pack, off, p.packSize-packTrailer-off))
	if in.zr == nil {
		r, err := zlib.NewReader(in.src)
		if err != nil {
			return nil, fmt.Errorf("inflate object data at %d: %w (%w)", off, errCorrupt, err)
		}
		in.zr = r
	} else if err := in.zr.(zlib.Resetter).Reset(in.src, nil); err != nil {
		return nil, fmt.Errorf("inflate object data at %d: %w (%w)", off, errCorrupt, err)
	}
	defer p.zlibReaders.Put(in)
	return readExactly(in.zr, size, fmt.Sprintf("object data at %d", off))
}

// inflater is a zlib reader and the buffered reader it reads the pack through, reused together.
type inflater struct {
	src *bufio.Reader
	zr  io.ReadCloser
}

// readExactly reads r to its end, which must come after exactly size bytes.
func readExactly(r io.Reader, size int64, what string) ([]byte, error) {
	initial := size
	if initial > 1<<16 {
		initial = 1 << 16
	}
	buf := bytes.NewBuffer(make([]byte, 0, initial+1))
	n, err := buf.ReadFrom(io.LimitReader(r, size+1))
	if err != nil {
		return nil, fmt.Errorf("inflate %s: %w (%w)", what, errCorrupt, err)
	}
	if n != size {
		return nil, fmt.Errorf("inflate %s: %d bytes, header says %d: %w", what, n, size, errCorrupt)
	}
	return buf.Bytes(), nil
}

// objectAt reads and inflates the object at off, applying deltas down to their base (bases by reference
// are looked up in this pack, where git keeps them).
func (p *packFile) objectAt(off int64) (objectType, []byte, error) {
	var chain [][]byte // deltas, from the object down to (excluding) its base
	var chainOffs []int64
	seen := map[int64]bool{}
	var base cachedBase
	for {
		if len(chain) > maxDeltaDepth {
			return 0, nil, fmt.Errorf("delta chain deeper than %d at %d: %w", maxDeltaDepth, off, errCorrupt)
		}
		if seen[off] {
			return 0, nil, fmt.Errorf("delta cycle through offset %d: %w", off, errCorrupt)
		}
		seen[off] = true
		if cached, ok := p.cachedBase(off); ok {
			base = cached
			break
		}
		h, err := p.header(off)
		if err != nil {
			return 0, nil, err
		}
		data, err := p.inflate(h.dataStart, h.size)
		if err != nil {
			return 0, nil, err
		}
		if h.typ != objOfsDelta && h.typ != objRefDelta {
			base = cachedBase{typ: h.typ, data: data}
			if len(chain) > 0 {
				p.keepBase(off, base)
			}
			break
		}
		chain = append(chain, data)
		chainOffs = append(chainOffs, off)
		if h.typ == objOfsDelta {
			off = h.baseOff
			continue
		}
		baseOff, ok, err := p.find(h.baseName)
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			return 0, nil, fmt.Errorf("delta base %s is not in the pack: %w", h.baseName, errCorrupt)
		}
		off = baseOff
	}
	for i := len(chain) - 1; i >= 0; i-- {
		patched, err := applyDelta(base.data, chain[i], p.maxSize)
		if err != nil {
			return 0, nil, fmt.Errorf("apply delta at %d: %w", chainOffs[i], err)
		}
		base.data = patched
		if i > 0 {
			p.keepBase(chainOffs[i], base)
		}
	}
	return base.typ, base.data, nil
}

func (p *packFile) cachedBase(off int64) (cachedBase, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.bases[off]
	return b, ok
}

// keepBase remembers an inflated delta base; callers never modify the data they get back.
func (p *packFile) keepBase(off int64, b cachedBase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.bases[off]; ok {
		return
	}
	if len(p.order) >= deltaBaseCacheEntries {
		delete(p.bases, p.order[0])
		p.order = p.order[1:]
	}
	p.bases[off] = b
	p.order = append(p.order, off)
}

// applyDelta applies a git delta to base. Sizes in the delta are checked against base, the output and
// maxSize as it is applied, so no allocation exceeds the declared result size and that size is bounded.
func applyDelta(base, delta []byte, maxSize int64) ([]byte, error) {
	i := 0
	varint := func() (int64, error) {
		var v int64
		for shift := 0; ; shift += 7 {
			if i >= len(delta) || shift > 56 {
				return 0, fmt.Errorf("delta size header: %w", errCorrupt)
			}
			c := delta[i]
			i++
			v |= int64(c&0x7f) << shift
			if c&0x80 == 0 {
				return v, nil
			}
		}
	}
	baseSize, err := varint()
	if err != nil {
		return nil, err
	}
	if baseSize != int64(len(base)) {
		return nil, fmt.Errorf("delta expects a base of %d bytes, base has %d: %w", baseSize, len(base), errCorrupt)
	}
	size, err := varint()
	if err != nil {
		return nil, err
	}
	if size > maxSize {
		return nil, fmt.Errorf("delta result of %d bytes, more than the %d bytes storagebot reads: %w", size, maxSize, errCorrupt)
	}
	initial := size
	if lim := int64(len(base)) + int64(len(delta))*16; initial > lim {
		initial = lim // grow with the data actually produced, not with what the header claims
	}
	out := make([]byte, 0, initial)
	for i < len(delta) {
		op := delta[i]
		i++
		switch {
		case op&0x80 != 0: // copy from base
			var off, n int64
			for bit := 0; bit < 7; bit++ {
				if op&(1<<bit) == 0 {
					continue
				}
				if i >= len(delta) {
					return nil, fmt.Errorf("delta copy truncated: %w", errCorrupt)
				}
				v := int64(delta[i])
				i++
				if bit < 4 {
					off |= v << (8 * bit)
				} else {
					n |= v << (8 * (bit - 4))
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > int64(len(base)) {
				return nil, fmt.Errorf("delta copies %d bytes at %d from a base of %d: %w", n, off, len(base), errCorrupt)
			}
			if int64(len(out))+n > size {
				return nil, fmt.Errorf("delta writes past its declared %d bytes: %w", size, errCorrupt)
			}
			out = append(out, base[off:off+n]...)
		case op != 0: // insert op bytes
			n := int(op)
			if i+n > len(delta) {
				return nil, fmt.Errorf("delta insert truncated: %w", errCorrupt)
			}
			if int64(len(out)+n) > size {
				return nil, fmt.Errorf("delta writes past its declared %d bytes: %w", size, errCorrupt)
			}
			out = append(out, delta[i:i+n]...)
			i += n
		default:
			return nil, fmt.Errorf("delta opcode 0: %w", errCorrupt)
		}
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("delta produced %d bytes, declared %d: %w", len(out), size, errCorrupt)
	}
	return out, nil
}
