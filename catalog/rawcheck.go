package catalog

import (
	"encoding/binary"
	"fmt"
	"os"
)

// bbolt page format, as read by rawCheck.
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	elementSize      = 16 // branch and leaf elements alike
	inBucketSize     = 16 // root pgid, sequence
	noFreelist       = ^uint64(0)
	maxRawProblems   = 20
)

// rawCheck walks every page reachable from the newest meta page by reading
// the file, not bbolt's memory map, and checks that every page id, element
// and key/value range lies where it may. bbolt trusts these offsets and
// follows them through unsafe pointers, so a damaged one can fault in a
// goroutine of bbolt's own (tx.Check), beyond any recover: Verify runs this
// first and opens the file only when it passes.
func rawCheck(path string) []error {
	meta, err := readBoltMeta(path)
	if err != nil {
		return []error{err}
	}
	f, err := os.Open(path)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	w := &rawWalker{f: f, m: meta, seen: map[uint64]bool{}}
	w.page(meta.root, "root bucket", 0)
	if meta.freelist != noFreelist {
		w.freelistPage(meta.freelist)
	}
	return w.errs
}

type rawWalker struct {
	f    *os.File
	m    boltMeta
	seen map[uint64]bool
	errs []error
}

func (w *rawWalker) fail(format string, args ...any) {
	if len(w.errs) < maxRawProblems {
		w.errs = append(w.errs, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...)))
	}
}

// read returns page id and its overflow pages, after checking its header.
func (w *rawWalker) read(id uint64, what string) []byte {
	if id < 2 || id >= w.m.pgid {
		w.fail("%s: page %d is outside the pages in use (2 to %d)", what, id, w.m.pgid-1)
		return nil
	}
	if w.seen[id] {
		w.fail("%s: page %d is reached twice", what, id)
		return nil
	}
	w.seen[id] = true
	ps := int64(w.m.pageSize)
	head := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(head, int64(id)*ps); err != nil {
		w.fail("%s: page %d: %v", what, id, err)
		return nil
	}
	if got := binary.LittleEndian.Uint64(head); got != id {
		w.fail("%s: page %d says it is page %d", what, id, got)
		return nil
	}
	overflow := uint64(binary.LittleEndian.Uint32(head[12:]))
	if id+overflow >= w.m.pgid {
		w.fail("%s: page %d has %d overflow pages, past the pages in use", what, id, overflow)
		return nil
	}
	buf := make([]byte, (int64(overflow)+1)*ps)
	if _, err := w.f.ReadAt(buf, int64(id)*ps); err != nil {
		w.fail("%s: page %d: %v", what, id, err)
		return nil
	}
	return buf
}

// page checks a branch or leaf page and everything below it.
func (w *rawWalker) page(id uint64, what string, depth int) {
	if depth > 64 {
		w.fail("%s: page %d: tree deeper than 64 levels", what, id)
		return
	}
	if buf := w.read(id, what); buf != nil {
		w.node(buf, fmt.Sprintf("%s: page %d", what, id), depth)
	}
}

// node checks the page image buf (a whole page, or an inline bucket's page
// inside a value).
func (w *rawWalker) node(buf []byte, where string, depth int) {
	if len(buf) < pageHeaderSize {
		w.fail("%s: %d bytes is too short for a page", where, len(buf))
		return
	}
	flags := binary.LittleEndian.Uint16(buf[8:])
	count := int(binary.LittleEndian.Uint16(buf[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		w.fail("%s: page type %#x is neither branch nor leaf", where, flags)
		return
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		w.fail("%s: %d elements do not fit in the page", where, count)
		return
	}
	if flags == branchPageFlag && count == 0 {
		w.fail("%s: empty branch page", where)
		return
	}
	for i := 0; i < count; i++ {
		at := pageHeaderSize + i*elementSize
		e := buf[at : at+elementSize]
		if flags == branchPageFlag {
			pos, ksize := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
			if !inside(at, pos, ksize, 0, len(buf)) {
				w.fail("%s: branch element %d: key out of the page", where, i)
				return
			}
			w.page(binary.LittleEndian.Uint64(e[8:]), where, depth+1)
			continue
		}
		eflags, pos := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
		ksize, vsize := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
		if !inside(at, pos, ksize, vsize, len(buf)) {
			w.fail("%s: leaf element %d: key or value out of the page", where, i)
			return
		}
		if eflags&bucketLeafFlag != 0 {
			start := at + int(pos)
			key := buf[start : start+int(ksize)]
			w.bucket(buf[start+int(ksize):start+int(ksize)+int(vsize)], fmt.Sprintf("%s: bucket %q", where, key), depth)
		}
	}
}

func (w *rawWalker) bucket(v []byte, where string, depth int) {
	if len(v) < inBucketSize {
		w.fail("%s: bucket header is %d bytes", where, len(v))
		return
	}
	if root := binary.LittleEndian.Uint64(v); root != 0 {
		w.page(root, where, depth+1)
		return
	}
	w.node(v[inBucketSize:], where+" (inline)", depth+1)
}

// inside reports whether the key (and value) of the element at offset at
// lie within a page image of n bytes.
func inside(at int, pos, ksize, vsize uint32, n int) bool {
	end := uint64(at) + uint64(pos) + uint64(ksize) + uint64(vsize)
	return end <= uint64(n)
}

func (w *rawWalker) freelistPage(id uint64) {
	buf := w.read(id, "freelist")
	if buf == nil {
		return
	}
	if flags := binary.LittleEndian.Uint16(buf[8:]); flags != freelistPageFlag {
		w.fail("freelist: page %d has type %#x", id, flags)
		return
	}
	count, idx := uint64(binary.LittleEndian.Uint16(buf[10:])), 0
	if count == 0xFFFF {
		if len(buf) < pageHeaderSize+8 {
			w.fail("freelist: page %d: too short", id)
			return
		}
		count, idx = binary.LittleEndian.Uint64(buf[pageHeaderSize:]), 1
	}
	if count > uint64(len(buf)-pageHeaderSize)/8 || uint64(idx)+count > uint64(len(buf)-pageHeaderSize)/8 {
		w.fail("freelist: page %d: %d ids do not fit", id, count)
		return
	}
	for i := uint64(0); i < count; i++ {
		free := binary.LittleEndian.Uint64(buf[pageHeaderSize+8*(uint64(idx)+i):])
		if free < 2 || free >= w.m.pgid {
			w.fail("freelist: page %d lists page %d, outside the pages in use", id, free)
			return
		}
	}
}
