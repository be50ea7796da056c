package catalog

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// TestExportTagKeys: an export's tags carry the well-known key ("zone" for a
// device's "User info"), so a query on a well-known key finds every piece,
// and the device's spelling beside it, which an import gives back.
func TestExportTagKeys(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ps := fixturePieces(2, 1)
	ps[0].Tag = tagmatch.Tag{{Key: "Manufacturer", Value: "Acme"}, {Key: "User info", Value: "South"}}
	ps[1].Tag = tagmatch.Tag{{Key: "manufacturer", Value: "Acme"}, {Key: "zone", Value: "South"}}
	mustIngest(t, c, ps)
	for _, format := range []string{FormatSQL, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			must(t, c.Export(&buf, format))
			var d dump
			var err error
			if format == FormatSQL {
				d, err = readSQL(bytes.NewReader(buf.Bytes()))
			} else {
				err = json.Unmarshal(buf.Bytes(), &d)
			}
			must(t, err)
			zone := 0
			for _, p := range d.Pieces {
				for _, a := range p.Tag {
					if a.Key == "zone" && a.Value == "South" {
						zone++
					}
					if a.Key != tagmatch.NormalizeKey(a.Key) || a.DeviceKey == "" {
						t.Errorf("piece %s: tag attribute %+v: want the normalised key and the device's spelling", p.ID, a)
					}
				}
			}
			if zone != 2 {
				t.Errorf("%d pieces have zone=South in the export, want 2 (one tagged \"User info\")", zone)
			}
			c2, _ := mustCreate(t, Options{})
			must(t, c2.Import(bytes.NewReader(buf.Bytes()), format))
			if a, b := dumpJSON(t, c), dumpJSON(t, c2); !bytes.Equal(a, b) {
				t.Errorf("import of the export differs:\n%s\nwant\n%s", b, a)
			}
			got, err := c2.Piece(d.Pieces[0].ID)
			must(t, err)
			if got.Tag.Text() != ps[0].Tag.Text() {
				t.Errorf("imported tag %q, want the device's own %q", got.Tag.Text(), ps[0].Tag.Text())
			}
		})
	}
	sqlite, err := exec.LookPath("sqlite3")
	if err != nil {
		return // the SQL query below needs sqlite3 (make deps installs it)
	}
	t.Run("sqlite query on the well-known key", func(t *testing.T) {
		var buf bytes.Buffer
		must(t, c.Export(&buf, FormatSQL))
		db := filepath.Join(t.TempDir(), "c.sqlite")
		cmd := exec.Command(sqlite, "-bail", db)
		cmd.Stdin = &buf
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v\n%s", err, out)
		}
		out, err := exec.Command(sqlite, db, "SELECT count(*) FROM piece_tags WHERE tag_key = 'zone' AND tag_value = 'South'; SELECT device_key FROM piece_tags WHERE tag_key = 'zone' ORDER BY device_key;").CombinedOutput()
		if err != nil || strings.Fields(string(out))[0] != "2" || !strings.Contains(string(out), "User info") {
			t.Fatalf("query: %v\n%s", err, out)
		}
	})
}
