package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseMBR(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr bool
	}{
		{"valid", "mbr-valid.yaml", false},
		{"bad version", "mbr-version.yaml", true},
		{"unknown key", "mbr-unknown-key.yaml", true},
		{"missing resources", "mbr-missing.yaml", true},
		{"not yaml", "mbr-garbage.yaml", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseMBR(data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMBR: err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err == nil {
				if m.Journal != "jobs.db" || m.DRServer != "10.50.4.4" || m.Catalogs["emea"] != "catalogs/emea.db" {
					t.Errorf("parsed %+v", m)
				}
				again, err := m.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if m2, err := ParseMBR(again); err != nil || m2.Server != m.Server {
					t.Errorf("round trip: %v %+v", err, m2)
				}
			}
		})
	}
}

func FuzzParseMBR(f *testing.F) {
	for _, n := range []string{"mbr-valid.yaml", "mbr-version.yaml", "mbr-garbage.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMBR(data)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("valid MBR does not marshal: %v", err)
		}
		if _, err := ParseMBR(out); err != nil {
			t.Fatalf("marshalled MBR does not parse: %v\n%s", err, out)
		}
	})
}

func TestInitRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
}

func TestDRMode(t *testing.T) {
	tests := []struct {
		name, site string
		want       bool
	}{
		{"local site", "10.10.11.1", false},
		{"dr site", "10.50.4.1", true},
		{"unset", "", false},
	}
	c0, mbr := mustCreate(t, Options{})
	c0.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(mbr, Options{SiteAddress: tt.site, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.DRMode() != tt.want {
				t.Errorf("DRMode = %v, want %v", c.DRMode(), tt.want)
			}
		})
	}
}
