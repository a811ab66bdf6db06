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
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// packedObjects reads objects from a repository's pack files through their .idx files on demand: a look-up
// is a binary search in the index file, so opening a repository costs nothing however many objects it holds.
//
// go-git's own pack storage decodes every index entry and builds an offset→hash map of the whole pack on
// the first object read (tens of milliseconds for a production-sized storage, growing with it); reading
// only what is asked for keeps `storagebot check` independent of the storage size (docs/architecture.md §3, §8).
type packedObjects struct {
	packs []*packFile
}

// packFile is one pack and its version 2 index.
type packFile struct {
	idx, pack *os.File // read with ReadAt only, safe for concurrent use
	fanout    [256]uint32
}

const (
	idxHeaderSize = 8
	idxFanoutSize = 256 * 4
)

var idxMagic = []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}

// openPacks opens every pack of the objects directory. A pack whose index is not version 2 is skipped
// (its objects are then read by go-git).
func openPacks(objectsDir string) (*packedObjects, error) {
	idxs, err := filepath.Glob(filepath.Join(objectsDir, "pack", "pack-*.idx"))
	if err != nil {
		return nil, fmt.Errorf("list packs in %s: %w", objectsDir, err)
	}
	sort.Strings(idxs)
	po := &packedObjects{}
	for _, path := range idxs {
		p, err := openPack(path)
		if err != nil {
			po.close()
			return nil, err
		}
		if p != nil {
			po.packs = append(po.packs, p)
		}
	}
	return po, nil
}

func openPack(idxPath string) (*packFile, error) {
	idx, err := os.Open(idxPath)
	if err != nil {
		return nil, fmt.Errorf("open pack index: %w", err)
	}
	var head [idxHeaderSize + idxFanoutSize]byte
	if _, err := idx.ReadAt(head[:], 0); err != nil || !bytes.Equal(head[:idxHeaderSize], idxMagic) {
		idx.Close()
		return nil, nil
	}
	pack, err := os.Open(strings.TrimSuffix(idxPath, ".idx") + ".pack")
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("open pack: %w", err)
	}
	p := &packFile{idx: idx, pack: pack}
	for i := range p.fanout {
		p.fanout[i] = binary.BigEndian.Uint32(head[idxHeaderSize+4*i:])
	}
	return p, nil
}

func (po *packedObjects) close() {
	for _, p := range po.packs {
		p.idx.Close()
		p.pack.Close()
	}
}

// read returns the type and contents of the object; found is false when no pack holds it.
func (po *packedObjects) read(h plumbing.Hash) (typ plumbing.ObjectType, data []byte, found bool, err error) {
	for _, p := range po.packs {
		off, ok, err := p.find(h)
		if err != nil {
			return 0, nil, false, err
		}
		if ok {
			typ, data, err := p.objectAt(off, 0)
			if err != nil {
				return 0, nil, false, fmt.Errorf("read object %s from %s: %w", h, p.pack.Name(), err)
			}
			return typ, data, true, nil
		}
	}
	return 0, nil, false, nil
}

// find binary-searches the index for h and returns the object's offset in the pack.
func (p *packFile) find(h plumbing.Hash) (int64, bool, error) {
	n := p.fanout[255]
	lo := uint32(0)
	if h[0] > 0 {
		lo = p.fanout[h[0]-1]
	}
	hi := p.fanout[h[0]]
	namesAt := int64(idxHeaderSize + idxFanoutSize)
	var name [20]byte
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := p.idx.ReadAt(name[:], namesAt+int64(mid)*20); err != nil {
			return 0, false, fmt.Errorf("read pack index %s: %w", p.idx.Name(), err)
		}
		switch c := bytes.Compare(name[:], h[:]); {
		case c == 0:
			return p.offset(mid, n)
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false, nil
}

// offset reads the pack offset of the i-th of n index entries (32-bit table, else the 64-bit one).
func (p *packFile) offset(i, n uint32) (int64, bool, error) {
	base := int64(idxHeaderSize+idxFanoutSize) + int64(n)*(20+4)
	var b [8]byte
	if _, err := p.idx.ReadAt(b[:4], base+int64(i)*4); err != nil {
		return 0, false, fmt.Errorf("read pack index %s: %w", p.idx.Name(), err)
	}
	off := binary.BigEndian.Uint32(b[:4])
	if off&0x80000000 == 0 {
		return int64(off), true, nil
	}
	large := base + int64(n)*4 + int64(off&0x7fffffff)*8
	if _, err := p.idx.ReadAt(b[:], large); err != nil {
		return 0, false, fmt.Errorf("read pack index %s: %w", p.idx.Name(), err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), true, nil
}

// maxDeltaDepth bounds delta chains (git's default is 50; a loop would mean a corrupt pack).
const maxDeltaDepth = 10_000

// objectAt reads and inflates the object at off, applying deltas down to their base.
func (p *packFile) objectAt(off int64, depth int) (plumbing.ObjectType, []byte, error) {
	if depth > maxDeltaDepth {
		return 0, nil, errors.New("delta chain too deep")
	}
	r := bufio.NewReaderSize(io.NewSectionReader(p.pack, off, 1<<62), 4096)
	c, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	typ := plumbing.ObjectType((c >> 4) & 7)
	size := uint64(c & 0x0f)
	for shift := 4; c&0x80 != 0; shift += 7 {
		if c, err = r.ReadByte(); err != nil {
			return 0, nil, err
		}
		size |= uint64(c&0x7f) << shift
	}
	var baseType plumbing.ObjectType
	var base []byte
	switch typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	case plumbing.OFSDeltaObject:
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if c, err = r.ReadByte(); err != nil {
				return 0, nil, err
			}
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		if baseType, base, err = p.objectAt(off-rel, depth+1); err != nil {
			return 0, nil, err
		}
	case plumbing.REFDeltaObject:
		var h plumbing.Hash
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, nil, err
		}
		baseOff, ok, err := p.find(h)
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			return 0, nil, fmt.Errorf("delta base %s is not in the pack", h)
		}
		if baseType, base, err = p.objectAt(baseOff, depth+1); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, fmt.Errorf("unknown object type %d at offset %d", typ, off)
	}
	zr, err := zlib.NewReader(r)
	if err != nil {
		return 0, nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(zr, data); err != nil {
		return 0, nil, err
	}
	if base == nil {
		return typ, data, nil
	}
	patched, err := packfile.PatchDelta(base, data)
	if err != nil {
		return 0, nil, err
	}
	return baseType, patched, nil
}

// packedStorage is go-git's filesystem storage with object reads served by packedObjects first; go-git
// still handles references, loose objects, alternates and anything the packs do not hold.
type packedStorage struct {
	*filesystem.Storage
	packs *packedObjects
}

// EncodedObject returns the object from the packs when they hold it, else from go-git's storage.
func (s *packedStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	typ, data, found, err := s.packs.read(h)
	if err != nil {
		return nil, err
	}
	if !found {
		return s.Storage.EncodedObject(t, h)
	}
	if t != plumbing.AnyObject && t != typ {
		return nil, plumbing.ErrObjectNotFound
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(typ)
	obj.SetSize(int64(len(data)))
	if _, err := obj.Write(data); err != nil {
		return nil, err
	}
	return obj, nil
}

// HasEncodedObject reports whether the object exists, looking in the packs first.
func (s *packedStorage) HasEncodedObject(h plumbing.Hash) error {
	for _, p := range s.packs.packs {
		if _, ok, err := p.find(h); err != nil || ok {
			return err
		}
	}
	return s.Storage.HasEncodedObject(h)
}
