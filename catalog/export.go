package catalog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Export formats.
const (
	FormatJSON = "json"
	FormatSQL  = "sql"
)

// ExportNotice heads every export (a comment in SQL, the "notice" field in
// JSON): an export is the standard's interchange form, in clear even when
// the installation is encrypted.
const ExportNotice = "This export holds the settings and the device credentials of the installation IN CLEAR " +
	"(the open standard's interchange form, loadable by any SQL tool): keep it as safe as the devices themselves, " +
	"or write it with fleetvault catalog export --encrypt."

// DumpFormat names the export format; DumpVersion is its version.
const (
	DumpFormat  = "fleetvault-catalog"
	DumpVersion = 1
)

// timeLayout is the standard's timestamp form: ISO-8601 UTC with nine
// fraction digits, so text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// dump is an installation's catalogs and resource database in the open
// standard's shape (docs/spec/catalog.md): what Export writes and Import
// reads, in either format. Both formats carry the content (base64), so an
// export is a full copy.
type dump struct {
	Format      string            `json:"format"`
	Version     int               `json:"version"`
	Notice      string            `json:"notice,omitempty"` // ExportNotice: what the file holds in clear
	MBR         map[string]string `json:"mbr"`
	Devices     []Device          `json:"devices"`
	Groups      []groupDump       `json:"groups"`
	Replication []ruleRecord      `json:"replication"`
	KeepRules   []KeepRule        `json:"keep_rules"`
	Schedules   []Schedule        `json:"schedules,omitempty"`
	// Certifications and CertPolicies: the records and the policies
	// changed from their defaults (absent when none).
	Certifications []Certification `json:"certifications,omitempty"`
	CertPolicies   []CertPolicy    `json:"certification_policies,omitempty"`
	Pieces         []pieceDump     `json:"pieces,omitempty"`
	Content        []contentDump   `json:"content,omitempty"`
	Restores       []RestoreEvent  `json:"restores"`
}

type groupDump struct {
	Group
	Members []string `json:"members"`
}

type pieceDump struct {
	ID       string            `json:"id"`
	Catalog  string            `json:"catalog"`
	Client   string            `json:"client"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Owner    string            `json:"owner"`
	Location string            `json:"location"`
	Time     string            `json:"backup_time"`
	Expiry   string            `json:"expiry_time,omitempty"`
	Size     int64             `json:"size"`
	Ref      string            `json:"content_hash"`
	Group    string            `json:"backup_group"`
	Job      string            `json:"job_id"`
	Tag      []tagDump         `json:"tag,omitempty"`
	Optional map[string]string `json:"optional,omitempty"`
}

// tagDump is one tag attribute in an export: the well-known spelling of its
// key (tagmatch.NormalizeKey: "User info" is "zone"), so that a query on a
// well-known key finds every piece, and the device's own spelling, so that an
// import gives back the tag exactly as the device sent it.
type tagDump struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	DeviceKey string `json:"device_key,omitempty"` // absent: the same as key
}

func tagToDump(t tagmatch.Tag) []tagDump {
	if len(t) == 0 {
		return nil
	}
	out := make([]tagDump, len(t))
	for i, a := range t {
		out[i] = tagDump{Key: tagmatch.NormalizeKey(a.Key), Value: a.Value, DeviceKey: a.Key}
	}
	return out
}

func tagFromDump(ts []tagDump) tagmatch.Tag {
	if len(ts) == 0 {
		return nil
	}
	out := make(tagmatch.Tag, len(ts))
	for i, a := range ts {
		k := a.DeviceKey
		if k == "" {
			k = a.Key
		}
		out[i] = tagmatch.Attr{Key: k, Value: a.Value}
	}
	return out
}

type contentDump struct {
	Ref  string `json:"content_hash"`
	Data []byte `json:"data_base64"`
}

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return t.UTC(), nil
}

// Export writes every catalog and the resource database in format
// (FormatSQL or FormatJSON), content included.
func (c *Catalog) Export(w io.Writer, format string) error {
	if format != FormatSQL && format != FormatJSON {
		return fmt.Errorf("catalog: export: %w: format %q is not sql or json", ErrInvalid, format)
	}
	d, err := c.dumpResources()
	if err != nil {
		return err
	}
	if format == FormatSQL {
		return writeSQL(w, d, c.eachContent, c.eachPiece)
	}
	return writeJSON(w, d, c.eachContent, c.eachPiece)
}

// writeJSON writes the dump object with pieces and content streamed, so an
// export of a large catalog does not hold it in memory.
func writeJSON(w io.Writer, d dump, content func(func(contentDump) error) error, pieces func(func(pieceDump) error) error) error {
	bw := bufio.NewWriter(w)
	head, err := json.Marshal(d) // pieces and content are nil: "pieces":null,"content":null
	if err != nil {
		return fmt.Errorf("catalog: export: %w", err)
	}
	head = bytes.TrimSuffix(head, []byte("}"))
	bw.Write(head)
	for _, part := range []struct {
		name string
		each func(func(any) error) error
	}{
		{"pieces", func(fn func(any) error) error { return pieces(func(p pieceDump) error { return fn(p) }) }},
		{"content", func(fn func(any) error) error { return content(func(c contentDump) error { return fn(c) }) }},
	} {
		fmt.Fprintf(bw, ",\n%q:[", part.name)
		n := 0
		err := part.each(func(v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if n > 0 {
				bw.WriteString(",")
			}
			n++
			bw.WriteString("\n")
			_, err = bw.Write(b)
			return err
		})
		if err != nil {
			return fmt.Errorf("catalog: export: %w", err)
		}
		bw.WriteString("]")
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("catalog: export: %w", err)
	}
	return nil
}

// dump is the whole installation in memory (for tests and small catalogs).
func (c *Catalog) dump() (dump, error) {
	d, err := c.dumpResources()
	if err != nil {
		return d, err
	}
	if err := c.eachPiece(func(p pieceDump) error { d.Pieces = append(d.Pieces, p); return nil }); err != nil {
		return d, err
	}
	err = c.eachContent(func(cd contentDump) error { d.Content = append(d.Content, cd); return nil })
	return d, err
}

// dumpResources is everything but pieces and content.
func (c *Catalog) dumpResources() (dump, error) {
	d := dump{Format: DumpFormat, Version: DumpVersion, Notice: ExportNotice, MBR: map[string]string{
		"version": strconv.Itoa(c.mbr.Version), "server": c.mbr.Server, "dr_server": c.mbr.DRServer,
		"resources": c.mbr.Resources, "catalog": c.mbr.Catalog, "journal": c.mbr.Journal, "methods": c.mbr.Methods,
	}}
	for _, n := range c.mbr.CatalogNames()[1:] {
		d.MBR["catalogs."+n] = c.mbr.Catalogs[n]
	}
	if err := c.Devices(func(dv Device) error { d.Devices = append(d.Devices, dv); return nil }); err != nil {
		return d, err
	}
	gs, err := c.Groups()
	if err != nil {
		return d, err
	}
	for _, g := range gs {
		ms, err := c.Members(g.Name)
		if err != nil {
			return d, err
		}
		d.Groups = append(d.Groups, groupDump{g, ms})
	}
	rules, err := c.Replication()
	if err != nil {
		return d, err
	}
	for _, r := range rules {
		d.Replication = append(d.Replication, toRuleRecord(r))
	}
	if d.KeepRules, err = c.KeepRules(); err != nil {
		return d, err
	}
	if d.Schedules, err = c.Schedules(); err != nil {
		return d, err
	}
	if err := c.dumpCertifications(&d); err != nil {
		return d, err
	}
	if d.Restores, err = c.Restores(RestoreQuery{}); err != nil {
		return d, err
	}
	sort.Slice(d.Restores, func(i, j int) bool { return d.Restores[i].ID < d.Restores[j].ID })
	return d, nil
}

// eachPiece streams every piece of every catalog, in id order per catalog.
func (c *Catalog) eachPiece(fn func(pieceDump) error) error {
	for _, s := range c.shards {
		err := view(s.db, "catalog: export "+s.label(), func(tx *bbolt.Tx) error {
			return s.eachPiece(tx, func(p Piece) error {
				pd := pieceDump{ID: p.ID, Catalog: s.name, Client: p.Client, Name: p.Name, Type: p.Type, Owner: p.Owner,
					Location: p.Location, Time: fmtTime(p.Time), Size: p.Size, Ref: p.Ref.String(), Group: p.Group, Job: p.Job,
					Tag: tagToDump(p.Tag), Optional: p.Optional}
				if !p.Expiry.IsZero() {
					pd.Expiry = fmtTime(p.Expiry)
				}
				return fn(pd)
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// eachContent streams each distinct content object the pieces refer to,
// once, hash-checked.
func (c *Catalog) eachContent(fn func(contentDump) error) error {
	seen := map[dedupe.Ref]bool{}
	for _, s := range c.shards {
		err := view(s.db, "catalog: export "+s.label(), func(tx *bbolt.Tx) error {
			return tx.Bucket(bktPieces).ForEach(func(k, v []byte) error {
				r, err := decodeRecord(v)
				if err != nil {
					return fmt.Errorf("catalog: export: piece %s: %w", s.pieceID(k), err)
				}
				if seen[r.Ref] {
					return nil
				}
				seen[r.Ref] = true
				data, err := c.store.Get(tx, r.Ref)
				if err != nil {
					return fmt.Errorf("catalog: export: piece %s: %w", s.pieceID(k), err)
				}
				return fn(contentDump{Ref: r.Ref.String(), Data: data})
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Import reads an export (FormatSQL or FormatJSON) into this installation:
// devices, groups and members, replication and keep rules replace what is
// there under the same names; pieces and restore events keep their ids and
// must not exist yet. Content is checked against its hash.
func (c *Catalog) Import(r io.Reader, format string) error {
	if err := c.writable(); err != nil {
		return err
	}
	var d dump
	switch format {
	case FormatJSON:
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return fmt.Errorf("catalog: import: %w: %v", ErrInvalid, err)
		}
	case FormatSQL:
		var err error
		if d, err = readSQL(r); err != nil {
			return fmt.Errorf("catalog: import: %w", err)
		}
	default:
		return fmt.Errorf("catalog: import: %w: format %q is not sql or json", ErrInvalid, format)
	}
	if d.Format != DumpFormat || d.Version != DumpVersion {
		return fmt.Errorf("catalog: import: %w: not a %s version %d export (format %q version %d)", ErrInvalid, DumpFormat, DumpVersion, d.Format, d.Version)
	}
	return c.load(d)
}

func (c *Catalog) load(d dump) error {
	content := map[string][]byte{}
	for _, cd := range d.Content {
		if sum := sha256.Sum256(cd.Data); dedupe.Ref(sum).String() != cd.Ref {
			return fmt.Errorf("catalog: import: content %s: %w: data hashes to %x", cd.Ref, ErrCorrupt, sum)
		}
		content[cd.Ref] = cd.Data
	}
	err := update(c.res, "catalog: import resources", func(tx *bbolt.Tx) error { return c.loadResources(tx, d) })
	if err != nil {
		return fmt.Errorf("catalog: import: %w", err)
	}
	for _, s := range c.shards {
		err := update(s.db, "catalog: import into "+s.label(), func(tx *bbolt.Tx) error {
			if err := c.loadPieces(tx, s, d.Pieces, content); err != nil {
				return err
			}
			if s.name != "" {
				return nil
			}
			for i, e := range d.Restores {
				seq, err := strconv.ParseUint(e.ID, 16, 64)
				if err != nil || seq == 0 || tx.Bucket(bktRestores).Get(binary.BigEndian.AppendUint64(nil, seq)) != nil {
					return fmt.Errorf("restore event %d: %w: id %q is bad or exists", i, ErrInvalid, e.ID)
				}
				if err := putRestore(tx, e, seq); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("catalog: import: %w", err)
		}
	}
	return nil
}

func (c *Catalog) loadResources(tx *bbolt.Tx, d dump) error {
	recs := c.resRecords(tx)
	for _, dv := range d.Devices {
		if err := checkName("device id", dv.ID); err != nil {
			return err
		}
		if err := recs.put(bktDevices, []byte(dv.ID), dv); err != nil {
			return err
		}
	}
	for _, g := range d.Groups {
		if err := checkName("group name", g.Name); err != nil {
			return err
		}
		if err := c.putGroup(tx, g.Group, true); err != nil {
			return err
		}
		b := tx.Bucket(bktMembers).Bucket([]byte(g.Name))
		for _, m := range g.Members {
			if err := b.Put([]byte(m), nil); err != nil {
				return fmt.Errorf("group %s member %q: %w", g.Name, m, err)
			}
		}
	}
	if len(d.Replication) > 0 {
		if err := recs.put(bktReplication, keyRules, d.Replication); err != nil {
			return err
		}
	}
	for _, r := range d.KeepRules {
		if err := r.validate(); err != nil {
			return err
		}
		if err := recs.put(bktRetention, r.key(), r); err != nil {
			return err
		}
	}
	if err := loadSchedules(recs, d.Schedules); err != nil {
		return err
	}
	return loadCertifications(recs, d)
}

func (c *Catalog) loadPieces(tx *bbolt.Tx, s *shard, pieces []pieceDump, content map[string][]byte) error {
	pb := tx.Bucket(bktPieces)
	for _, pd := range pieces {
		if pd.Catalog != s.name {
			if _, ok := c.byName[pd.Catalog]; !ok {
				return fmt.Errorf("piece %s: %w: catalog %q is not in this installation's MBR", pd.ID, ErrInvalid, pd.Catalog)
			}
			continue
		}
		p, key, err := c.pieceFromDump(s, pd)
		if err != nil {
			return err
		}
		if _, _, found, err := findRun(tx, key); err != nil || found {
			return fmt.Errorf("piece %s: %w", pd.ID, orExists(err, key))
		}
		data, ok := content[pd.Ref]
		if !ok {
			return fmt.Errorf("piece %s: %w: content %s is not in the export", pd.ID, ErrInvalid, pd.Ref)
		}
		if _, _, err := c.store.Put(tx, data); err != nil {
			return fmt.Errorf("piece %s: %w", pd.ID, err)
		}
		if seq := binary.BigEndian.Uint64(key) >> runBits; seq > pb.Sequence() {
			if err := pb.SetSequence(seq); err != nil {
				return err
			}
		}
		if _, err := storePiece(tx, key, toRecord(p)); err != nil {
			return fmt.Errorf("piece %s: %w", pd.ID, err)
		}
	}
	return nil
}

func (c *Catalog) pieceFromDump(s *shard, pd pieceDump) (Piece, []byte, error) {
	ks, key, err := c.lookupID(pd.ID)
	if err != nil || ks != s {
		return Piece{}, nil, fmt.Errorf("piece %q: %w: bad id for catalog %q", pd.ID, ErrInvalid, pd.Catalog)
	}
	tag := tagFromDump(pd.Tag)
	if err := validatePiece(0, NewPiece{Client: pd.Client, Name: pd.Name, Group: pd.Group, Tag: tag}); err != nil {
		return Piece{}, nil, fmt.Errorf("piece %s: %w", pd.ID, err)
	}
	ref, err := dedupe.ParseRef(pd.Ref)
	if err != nil {
		return Piece{}, nil, fmt.Errorf("piece %s: %w: content hash: %v", pd.ID, ErrInvalid, err)
	}
	p := Piece{ID: pd.ID, Client: pd.Client, Name: pd.Name, Type: pd.Type, Owner: pd.Owner, Location: pd.Location,
		Group: pd.Group, Job: pd.Job, Size: pd.Size, Tag: tag, Ref: ref, Optional: pd.Optional}
	if p.Time, err = parseTime("piece "+pd.ID+" backup_time", pd.Time); err != nil {
		return Piece{}, nil, err
	}
	if pd.Expiry != "" {
		if p.Expiry, err = parseTime("piece "+pd.ID+" expiry_time", pd.Expiry); err != nil {
			return Piece{}, nil, err
		}
	}
	return p, key, nil
}
