package catalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
)

func verify(t *testing.T, mbr string, readData bool) []Problem {
	t.Helper()
	var ps []Problem
	if err := Verify(mbr, Options{}, readData, func(p Problem) { ps = append(ps, p) }); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return ps
}

// damagedInstall makes an installation with a few pieces, one holding a
// unique marker, and returns its MBR and that piece.
func damagedInstall(t *testing.T) (string, Piece) {
	t.Helper()
	c, mbr := mustCreate(t, Options{})
	ps := fixturePieces(4, 3)
	ps[0].Content = []byte("MARKER-CONTENT-0123456789abcdef-unique-settings")
	ps[0].Optional = map[string]string{"note": "MARKER-RECORD"}
	out := mustIngest(t, c, ps)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return mbr, out[0]
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, dbPath string, p Piece)
		readData bool
		want     string // in a problem's text; "" means no problem
	}{
		{"clean", func(*testing.T, string, Piece) {}, true, ""},
		{"flipped content byte", flipContent, true, "content"},
		{"flipped page byte", flipPage, false, "catalog.db"},
		{"flipped record byte", flipRecord, false, "checksum mismatch"},
		{"truncated file", truncate, false, "truncated"},
		{"garbage file", func(t *testing.T, p string, _ Piece) { writeFile(t, p, []byte("not a database")) }, false, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbr, p := damagedInstall(t)
			tt.damage(t, filepath.Join(filepath.Dir(mbr), "catalog.db"), p)
			ps := verify(t, mbr, tt.readData)
			t.Logf("problems: %v", ps)
			if tt.want == "" {
				if len(ps) != 0 {
					t.Fatalf("problems in a clean installation: %v", ps)
				}
				return
			}
			var all []string
			for _, pr := range ps {
				all = append(all, pr.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Fatalf("problems %q do not mention %q", all, tt.want)
			}
		})
	}
}

// flipContent alters one byte of a stored content object, through bbolt so
// the file stays sound: only the hash check can notice.
func flipContent(t *testing.T, dbPath string, p Piece) {
	db, err := bbolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("dedupe/objects"))
		v := b.Get(p.Ref[:])
		if v == nil {
			return errors.New("object not found in dedupe/objects")
		}
		v = bytes.Clone(v)
		v[len(v)-1] ^= 0x01
		return b.Put(p.Ref[:], v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flipPage breaks the header of the page holding a record.
func flipPage(t *testing.T, dbPath string, _ Piece) {
	data, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("MARKER-RECORD"))
	if i < 0 {
		t.Fatal("marker not in file")
	}
	ps := os.Getpagesize()
	start := i / ps * ps
	data[start+8] ^= 0xff // page flags
	writeFile(t, dbPath, data)
}

// flipRecord changes one byte inside a stored record's text.
func flipRecord(t *testing.T, dbPath string, _ Piece) {
	data, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("MARKER-RECORD"))
	if i < 0 {
		t.Fatal("marker not in file")
	}
	data[i+3] ^= 0x01
	writeFile(t, dbPath, data)
}

func truncate(t *testing.T, dbPath string, _ Piece) {
	// Past the meta pages, short of the pages in use.
	if err := os.Truncate(dbPath, int64(3*os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestContentCorrupt(t *testing.T) {
	mbr, p := damagedInstall(t)
	dbPath := filepath.Join(filepath.Dir(mbr), "catalog.db")
	flipContent(t, dbPath, p)
	c, err := Open(mbr, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Content(p.Ref)
	if !errors.Is(err, dedupe.ErrCorrupt) || !strings.Contains(err.Error(), p.Ref.String()) {
		t.Fatalf("Content of a damaged object: %v, want dedupe.ErrCorrupt naming %s", err, p.Ref)
	}
}
