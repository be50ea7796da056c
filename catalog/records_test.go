package catalog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// storeInstall makes an installation with a device, a piece and a journal
// record, each holding a marker string, and returns its MBR.
func storeInstall(t *testing.T, key *repokey.Key) string {
	t.Helper()
	dir := t.TempDir()
	opts := InitOptions{Server: "10.10.11.1"}
	if key != nil {
		opts.Key, opts.KeyDir = key, filepath.Join(dir, "keys")
	}
	mbr, err := Init(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(mbr, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PutDevices(context.Background(), []Device{{ID: "dev-1", PasswordHash: "MARKER-DEVICE-SECRET", Identifier: "mqtt://10.0.0.1/dev-1"}}); err != nil {
		t.Fatal(err)
	}
	ps := fixturePieces(1, 1)
	ps[0].Content = []byte(`{"wifi_psk":"MARKER-NETWORK-KEY-0123456789"}`)
	mustIngest(t, c, ps)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "jobs.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("jobs"))
		if err != nil {
			return err
		}
		return b.Put([]byte("job-1"), frame.Codec{}.Encode([]byte("jobs"), []byte("job-1"), []byte("MARKER-JOURNAL-ENTRY")))
	})
	if err != nil {
		t.Fatal(err)
	}
	return mbr
}

// flipMarker flips a byte inside every occurrence of marker in file (a
// freed page may hold an older copy of the record).
func flipMarker(marker string) func(t *testing.T, file string) {
	return func(t *testing.T, file string) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := bytes.Index(data, []byte(marker)); i >= 0; i = bytes.Index(data, []byte(marker)) {
			data[i+3] ^= 0x01
			n++
		}
		if n == 0 {
			t.Fatalf("%s not in %s", marker, file)
		}
		writeFile(t, file, data)
	}
}

func TestVerifyEveryStore(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		damage func(t *testing.T, file string)
		want   string
	}{
		{"device record", "resources.db", flipMarker("MARKER-DEVICE-SECRET"), `resources.db: bucket devices, key "dev-1": corrupt: record damaged: checksum mismatch`},
		{"journal record", "jobs.db", flipMarker("MARKER-JOURNAL-ENTRY"), `jobs.db: bucket jobs, key "job-1": corrupt: record damaged: checksum mismatch`},
		{"journal empty", "jobs.db", func(t *testing.T, f string) { writeFile(t, f, nil) }, "jobs.db: corrupt: file is 0 bytes"},
		{"journal garbage", "jobs.db", func(t *testing.T, f string) { writeFile(t, f, bytes.Repeat([]byte("garbage!"), 2048)) }, "jobs.db: corrupt: both meta pages damaged"},
		{"journal meta pages", "jobs.db", damageMetas, "jobs.db: corrupt: both meta pages damaged"},
		{"journal missing", "jobs.db", func(t *testing.T, f string) { os.Remove(f) }, "jobs.db is missing"},
		{"content", "catalog.db", flipMarker("MARKER-NETWORK-KEY"), "catalog.db: content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbr := storeInstall(t, nil)
			if ps := verify(t, mbr, true); len(ps) != 0 {
				t.Fatalf("problems before the damage: %v", ps)
			}
			tt.damage(t, filepath.Join(filepath.Dir(mbr), tt.file))
			var all []string
			for _, p := range verify(t, mbr, true) {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Fatalf("problems %q do not mention %q", all, tt.want)
			}
		})
	}
}

// damageMetas breaks the checksum of both meta pages.
func damageMetas(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	data[pageHeaderSize+20] ^= 0xff
	data[ps+pageHeaderSize+20] ^= 0xff
	writeFile(t, file, data)
}

func TestOpenRefusesMissingFiles(t *testing.T) {
	for _, file := range []string{"resources.db", "catalog.db"} {
		t.Run(file, func(t *testing.T) {
			mbr := storeInstall(t, nil)
			path := filepath.Join(filepath.Dir(mbr), file)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			_, err := Open(mbr, Options{})
			var me *MissingError
			if !errors.Is(err, ErrMissing) || !errors.As(err, &me) || me.Path != path || !strings.Contains(err.Error(), "only `fleetvault init` creates") {
				t.Fatalf("Open = %v, want a MissingError naming %s", err, path)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open created %s", path)
			}
		})
	}
	t.Run("jobs.db", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jobs.db")
		_, err := OpenFile(path, "job journal", FileOptions{})
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "job journal "+path+" is missing") {
			t.Fatalf("OpenFile = %v", err)
		}
	})
}

// testKey is a repository key for tests.
func testKey(t *testing.T) *repokey.Key {
	t.Helper()
	k, err := repokey.New()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertNoMarkers fails when a file of the installation holds a marker.
func assertNoMarkers(t *testing.T, dir string, markers ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range markers {
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("%s holds %q in clear", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedInstallation(t *testing.T) {
	key := testKey(t)
	mbr := storeInstall(t, key)
	assertNoMarkers(t, filepath.Dir(mbr), "MARKER-DEVICE-SECRET", "MARKER-NETWORK-KEY")
	tests := []struct {
		name string
		key  *repokey.Key
		want error
	}{
		{"no key", nil, ErrKeyRequired},
		{"another key", testKey(t), ErrWrongKey},
		{"its key", key, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(mbr, Options{Key: tt.key, ReadOnly: true})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			defer c.Close()
			d, err := c.Device("dev-1")
			if err != nil || d.PasswordHash != "MARKER-DEVICE-SECRET" {
				t.Fatalf("Device = %+v, %v", d, err)
			}
			p, err := c.Latest("home1")
			if err != nil {
				t.Fatal(err)
			}
			data, err := c.Content(p.Ref)
			if err != nil || !strings.Contains(string(data), "MARKER-NETWORK-KEY") {
				t.Fatalf("Content = %q, %v", data, err)
			}
		})
	}
	var ps []Problem
	if err := Verify(mbr, Options{Key: key}, true, func(p Problem) { ps = append(ps, p) }); err != nil || len(ps) != 0 {
		t.Fatalf("Verify = %v, problems %v", err, ps)
	}
}

func TestRekey(t *testing.T) {
	mbr := storeInstall(t, nil)
	dir := filepath.Dir(mbr)
	key, other := testKey(t), testKey(t)
	steps := []struct {
		name     string
		from, to *repokey.Key
	}{
		{"encrypt", nil, key},
		{"rotate", key, other},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := Rekey(mbr, st.from, st.to, filepath.Join(dir, "keys")); err != nil {
				t.Fatal(err)
			}
			assertNoMarkers(t, dir, "MARKER-DEVICE-SECRET", "MARKER-NETWORK-KEY")
			if _, err := Open(mbr, Options{Key: st.from, ReadOnly: true}); err == nil {
				t.Fatal("the old key still opens the installation")
			}
			var ps []Problem
			if err := Verify(mbr, Options{Key: st.to}, true, func(p Problem) { ps = append(ps, p) }); err != nil || len(ps) != 0 {
				t.Fatalf("Verify = %v, problems %v", err, ps)
			}
			c, err := Open(mbr, Options{Key: st.to, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if d, err := c.Device("dev-1"); err != nil || d.PasswordHash != "MARKER-DEVICE-SECRET" {
				t.Fatalf("Device = %+v, %v", d, err)
			}
		})
	}
}

// TestLegacyInstallation opens an installation written before record
// frames: JSON records with no checksum, no frames marker, no jobs.db (its
// init did not create one). It opens, its records read, the journal is
// created, and its records are framed from then on.
func TestLegacyInstallation(t *testing.T) {
	mbr := storeInstall(t, nil)
	dir := filepath.Dir(mbr)
	if err := os.Remove(filepath.Join(dir, "jobs.db")); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "resources.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bktMeta); err != nil {
			return err
		}
		return tx.Bucket(bktDevices).Put([]byte("old-1"), []byte(`{"id":"old-1","password_hash":"LEGACY-RECORD"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(mbr, Options{})
	if err != nil {
		t.Fatalf("Open of a legacy installation: %v", err)
	}
	d, err := c.Device("old-1")
	c.Close()
	if err != nil || d.PasswordHash != "LEGACY-RECORD" {
		t.Fatalf("legacy device = %+v, %v", d, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jobs.db")); err != nil {
		t.Fatalf("the legacy installation's journal was not created: %v", err)
	}
	flipMarker("LEGACY-RECORD")(t, filepath.Join(dir, "resources.db"))
	var all []string
	for _, p := range verify(t, mbr, false) {
		all = append(all, p.String())
	}
	if want := `bucket devices, key "old-1"`; !strings.Contains(strings.Join(all, "\n"), want) {
		t.Fatalf("problems %q do not name %s", all, want)
	}
}
