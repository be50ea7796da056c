package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// The group index (idx/group) has one entry per client and backup group
// the client has pieces in: key group NUL client, value the tags of those
// pieces as a uvarint count of key/value string pairs, sorted, each once:
// a tag in the tag dictionary (tagdict.go) as the one pair (NUL, its id in
// decimal), a tag kept in its record (catalogs written before runs) as its
// attributes. A query by tag within a group reads the group's entries; one
// by tag alone reads them all. Catalogs written before runs kept the attributes as
// entries of their own (idx/tag: tag key NUL tag value NUL group NUL
// client); opening such a catalog for writing folds them into idx/group.

// attrSet is the tags of a client's pieces in one group: dictionary
// references (dictAttr) and attributes.
type attrSet map[tagmatch.Attr]bool

// dictAttr is the idx/group pair naming dictionary tag id; no tag key
// contains NUL (validatePiece).
func dictAttr(id uint64) tagmatch.Attr {
	return tagmatch.Attr{Key: "\x00", Value: strconv.FormatUint(id, 10)}
}

// sortedAttrs returns s's attributes in order.
func sortedAttrs(s attrSet) tagmatch.Tag {
	attrs := make(tagmatch.Tag, 0, len(s))
	for a := range s {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool {
		return attrs[i].Key < attrs[j].Key || attrs[i].Key == attrs[j].Key && attrs[i].Value < attrs[j].Value
	})
	return attrs
}

func (s attrSet) encode() []byte {
	if len(s) == 0 {
		return nil
	}
	attrs := sortedAttrs(s)
	b := binary.AppendUvarint(nil, uint64(len(attrs)))
	for _, a := range attrs {
		b = appendString(appendString(b, a.Key), a.Value)
	}
	return b
}

func decodeAttrSet(v []byte) (attrSet, error) {
	s := attrSet{}
	if len(v) == 0 {
		return s, nil
	}
	d := &recordReader{b: v}
	for n := d.count("tag attributes"); n > 0 && d.err == nil; n-- {
		s[tagmatch.Attr{Key: d.str("tag key"), Value: d.str("tag value")}] = true
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return s, d.err
}

func (s attrSet) equal(o attrSet) bool {
	if len(s) != len(o) {
		return false
	}
	for a := range s {
		if !o[a] {
			return false
		}
	}
	return true
}

// groupKey is a run's idx/group key.
func groupKey(r *record) []byte { return append(prefixOf(r.Group), r.Client...) }

// indexRun adds what run r needs to its idx/group entry, rewriting the
// entry only when something is new (so its page stays clean).
func indexRun(tx *bbolt.Tx, r *record) error {
	b := tx.Bucket(bktIdxGroup)
	k := groupKey(r)
	v := b.Get(k)
	have, err := decodeAttrSet(v)
	if err != nil {
		return fmt.Errorf("index entry %q: %w", k, err)
	}
	added := v == nil
	for _, a := range r.tagAttrs() {
		if !have[a] {
			have[a], added = true, true
		}
	}
	if !added {
		return nil
	}
	return b.Put(k, have.encode())
}

// groupNeeds collects the idx/group entries runs need.
type groupNeeds map[string]attrSet

func (g groupNeeds) add(r *record) {
	k := string(groupKey(r))
	if g[k] == nil {
		g[k] = attrSet{}
	}
	for _, a := range r.tagAttrs() {
		g[k][a] = true
	}
}

// tagAttrs are what r's tag puts in its idx/group entry.
func (r *record) tagAttrs() tagmatch.Tag {
	if r.tagID != 0 {
		return tagmatch.Tag{dictAttr(r.tagID)}
	}
	return r.Tag
}

// reindex makes the idx/group entries of keys in had match need: entries
// no run needs go, changed ones are rewritten.
func reindex(tx *bbolt.Tx, had, need groupNeeds) error {
	b := tx.Bucket(bktIdxGroup)
	for k := range had {
		if need[k] == nil {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
	}
	for k, s := range need {
		if h := had[k]; h != nil && h.equal(s) {
			continue
		}
		if err := b.Put([]byte(k), s.encode()); err != nil {
			return err
		}
	}
	return nil
}

// tagClients lists the clients with pieces tagged key=value, within group
// when it is not empty.
func tagClients(tx *bbolt.Tx, key, value, group string) ([]string, error) {
	if tx.Bucket(bktIdxTag) != nil { // a catalog written before runs, opened read-only
		if group != "" {
			return clientsUnder(tx, bktIdxTag, prefixOf(key, value, group), false), nil
		}
		return clientsUnder(tx, bktIdxTag, prefixOf(key, value), true), nil
	}
	b := tx.Bucket(bktIdxGroup)
	if b == nil {
		return nil, nil
	}
	want := tagmatch.Attr{Key: key, Value: value}
	prefix := prefixOf(group)
	if group == "" {
		prefix = nil
	}
	seen := map[string]bool{}
	dict := map[tagmatch.Attr]bool{} // dictionary pair -> its tag has want
	var out []string
	cur := b.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		s, err := decodeAttrSet(v)
		if err != nil {
			return nil, fmt.Errorf("index %s entry %q: %w", bktIdxGroup, k, err)
		}
		i := bytes.IndexByte(k, 0)
		has, err := s.has(tx, want, dict)
		if err != nil {
			return nil, fmt.Errorf("index %s entry %q: %w", bktIdxGroup, k, err)
		}
		if !has || i < 0 {
			continue
		}
		if c := string(k[i+1:]); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// has reports whether a tag of s has attribute want, resolving dictionary
// tags (remembered in dict).
func (s attrSet) has(tx *bbolt.Tx, want tagmatch.Attr, dict map[tagmatch.Attr]bool) (bool, error) {
	if s[want] {
		return true, nil
	}
	for a := range s {
		if a.Key != "\x00" {
			continue
		}
		has, ok := dict[a]
		if !ok {
			id, err := strconv.ParseUint(a.Value, 10, 64)
			if err != nil || id == 0 {
				return false, fmt.Errorf("%w: bad tag dictionary id %q", ErrCorrupt, a.Value)
			}
			r := record{tagID: id}
			if err := resolveTag(tx, &r); err != nil {
				return false, err
			}
			has = slices.Contains(r.Tag, want)
			dict[a] = has
		}
		if has {
			return true, nil
		}
	}
	return false, nil
}

// foldTagIndex moves a catalog's idx/tag entries (written before runs)
// into its idx/group entries and drops idx/tag.
func foldTagIndex(tx *bbolt.Tx) error {
	tb := tx.Bucket(bktIdxTag)
	if tb == nil {
		return nil
	}
	need := groupNeeds{}
	err := tb.ForEach(func(k, _ []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 4)
		if len(parts) != 4 {
			return fmt.Errorf("%w: index %s entry %q is not tag key, value, group and client", ErrCorrupt, bktIdxTag, k)
		}
		r := record{Group: string(parts[2]), Client: string(parts[3]), Tag: tagmatch.Tag{{Key: string(parts[0]), Value: string(parts[1])}}}
		need.add(&r)
		return nil
	})
	if err != nil {
		return err
	}
	b := tx.Bucket(bktIdxGroup)
	for k, s := range need {
		if err := b.Put([]byte(k), s.encode()); err != nil {
			return err
		}
	}
	return tx.DeleteBucket(bktIdxTag)
}
