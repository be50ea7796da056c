package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/identifiers"
)

// richCatalog fills an installation with one of everything, including text
// that needs quoting.
func richCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, _ := mustCreate(t, Options{})
	ctx := context.Background()
	ps := fixturePieces(4, 3)
	ps[0].Optional = map[string]string{"note": "O'Brien's \"hall\"\nline two; -- not a comment", "empty": ""}
	ps[1].Expiry = time.Time{}
	ps[2].Time = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	out := mustIngest(t, c, ps)
	must(t, c.PutDevices(ctx, []Device{
		{ID: "home1", Domain: "North Africa", Category: "critical", Owner: "facilities", Identifier: "mqtt://home1", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Role: RoleDevice, Optional: map[string]string{"room": "hall"}},
		{ID: "server", Role: RoleServer},
	}))
	must(t, c.CreateGroup("Backup Group of Devices", Group{Kind: GroupDevices, Domain: "Asia", Schedule: "0 3 * * *", Optional: map[string]string{"k": "v"}}))
	must(t, c.AddMembers("Backup Group of Devices", []string{"home1", "home2"}))
	must(t, c.CreateGroup("Empty", Group{Kind: GroupBackup}))
	must(t, c.SetReplication([]identifiers.Rule{{Local: identifiers.Endpoint{Host: "10.10.11.44", Port: 6543}, Remote: identifiers.Endpoint{Host: "10.50.4.4", Port: 3456}}}))
	must(t, c.SetKeepRules([]KeepRule{{Client: "home1", Last: 3}, {Group: "North Device Backup", Hourly: 24, Daily: 7, Monthly: 12}}))
	must(t, c.PutSchedule(Schedule{Name: "nightly", DeviceGroup: "Backup Group of Devices", BackupGroup: "North Device Backup", Cron: "0 3 * * *", RPO: 26 * time.Hour}))
	must(t, c.SetNextRun("nightly", t0.Add(15*time.Hour)))
	must(t, c.PutSchedule(Schedule{Name: "often", DeviceGroup: "Backup Group of Devices", BackupGroup: "Empty", Cron: "CRON_TZ=Europe/Paris */15 * * * *"}))
	must(t, c.PutCertification(Certification{Piece: out[0].ID, State: CertCertified, By: "facilities", At: t0.Add(time.Hour), Note: "O'Brien's twin matched",
		Evidence: &TestEvidence{Job: "job-2", Into: "twin", Device: "twin-1", By: "facilities", At: t0.Add(30 * time.Minute), Verified: true, ReadBack: true,
			RTOMillis: 42, SettingsHash: out[0].Ref.String(), SettingsSize: 12, Settings: json.RawMessage(`{"setpoint":21.5}`)}}))
	must(t, c.PutCertification(Certification{Piece: out[1].ID, State: CertUnknown, By: "fleetvault", At: t0, RemindedAt: t0.Add(7 * 24 * time.Hour)}))
	must(t, c.SetCertPolicy(CertPolicy{Category: CategoryCritical, LapseDays: 30, RemindDays: 3}))
	must(t, c.RecordRestores(ctx, []RestoreEvent{
		{Device: "home2", PieceID: out[0].ID, Ref: out[0].Ref.String(), Job: "job-1", Time: t0, Outcome: OutcomeRestored},
		{Device: "home3", Job: "job-1", Time: t0.Add(time.Second), Outcome: OutcomeSkipped, Detail: "no match: model T9 ≠ T1"},
	}))
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dumpJSON is an installation's content as comparable bytes.
func dumpJSON(t *testing.T, c *Catalog) []byte {
	t.Helper()
	d, err := c.dump()
	must(t, err)
	d.MBR = nil // paths and addresses belong to the installation, not its content
	b, err := json.MarshalIndent(d, "", " ")
	must(t, err)
	return b
}

// roundTrip exports src in format and imports the export into a fresh
// installation, which must dump as want and check clean.
func roundTrip(t *testing.T, src *Catalog, format string, want []byte) (*Catalog, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	must(t, src.Export(&buf, format))
	dst, _ := mustCreate(t, Options{})
	must(t, dst.Import(bytes.NewReader(buf.Bytes()), format))
	if got := dumpJSON(t, dst); !bytes.Equal(got, want) {
		t.Fatalf("round trip through %s changed the catalog:\n got %s\nwant %s", format, got, want)
	}
	if ps := verifyOpen(t, dst); len(ps) > 0 {
		t.Fatalf("imported catalog has problems: %v", ps)
	}
	return dst, &buf
}

func TestExportImportRoundTrip(t *testing.T) {
	src := richCatalog(t)
	want := dumpJSON(t, src)
	for _, format := range []string{FormatJSON, FormatSQL} {
		t.Run(format, func(t *testing.T) {
			dst, buf := roundTrip(t, src, format, want)
			// New pieces get fresh ids after imported ones.
			more := mustIngest(t, dst, fixturePieces(1, 1))
			if _, err := src.Piece(more[0].ID); err == nil {
				t.Fatalf("new piece id %s collides with an imported one", more[0].ID)
			}
			if err := dst.Import(bytes.NewReader(buf.Bytes()), format); !errors.Is(err, ErrExists) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("importing twice: %v, want an error", err)
			}
		})
	}
}

func TestImportRejects(t *testing.T) {
	tests := []struct {
		name, format, input string
	}{
		{"unknown format", "xml", ""},
		{"not json", FormatJSON, "{"},
		{"wrong dump format", FormatJSON, `{"format":"other","version":1}`},
		{"unknown table", FormatSQL, "INSERT INTO users (id) VALUES ('x');"},
		{"unterminated string", FormatSQL, "INSERT INTO fv_meta (meta_key, meta_value) VALUES ('format, 'x');"},
		{"bad hash", FormatSQL, "INSERT INTO fv_meta (meta_key, meta_value) VALUES ('format', 'fleetvault-catalog');\nINSERT INTO fv_meta (meta_key, meta_value) VALUES ('version', '1');\nINSERT INTO content (content_hash, size, data_base64) VALUES ('00', 1, 'eA==');"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{})
			err := c.Import(strings.NewReader(tt.input), tt.format)
			if err == nil || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrCorrupt)) {
				t.Fatalf("Import: %v, want ErrInvalid or ErrCorrupt", err)
			}
		})
	}
}

func FuzzParseSQL(f *testing.F) {
	f.Add("INSERT INTO fv_meta (meta_key, meta_value) VALUES ('format', 'fleetvault-catalog');")
	f.Add("CREATE TABLE x (a TEXT); -- c\nINSERT INTO pieces (id, size) VALUES ('a''b', -3), (NULL, 4);")
	f.Add("INSERT INTO t (a) VALUES ('")
	f.Fuzz(func(t *testing.T, src string) {
		rows, err := parseSQL(src)
		if err != nil {
			return
		}
		_, _ = dumpFromRows(rows)
	})
}

func exportSQLFile(t *testing.T) (string, *Catalog) {
	c := richCatalog(t)
	p := filepath.Join(t.TempDir(), "export.sql")
	f, err := os.Create(p)
	must(t, err)
	must(t, c.Export(f, FormatSQL))
	must(t, f.Close())
	return p, c
}

func TestSQLLoadsIntoSQLite(t *testing.T) {
	sqlite, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 not installed (make deps installs it)")
	}
	p, _ := exportSQLFile(t)
	db := filepath.Join(t.TempDir(), "c.sqlite")
	out, err := exec.Command("sh", "-c", fmt.Sprintf("%s -bail %s < %s", sqlite, db, p)).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 rejects the export: %v\n%s", err, out)
	}
	out, err = exec.Command(sqlite, db, "SELECT count(*), sum(size) FROM pieces; SELECT opt_value FROM piece_optional WHERE opt_key='note';").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "12|") || !strings.Contains(string(out), "O'Brien's") {
		t.Fatalf("sqlite3 query: %v\n%s", err, out)
	}
}

func TestSQLLoadsIntoPostgreSQL(t *testing.T) {
	bin := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		t.Skip("PostgreSQL 15 server not installed (make deps installs it)")
	}
	p, _ := exportSQLFile(t)
	pg := startPostgres(t, bin)
	// psql may run as the postgres user: give it a copy it can read.
	data, err := os.ReadFile(p)
	must(t, err)
	p = filepath.Join(pg.sock, "export.sql")
	must(t, os.WriteFile(p, data, 0o644))
	out, err := pg.run("psql", "-h", pg.sock, "-p", pg.port, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-f", p)
	if err != nil {
		t.Fatalf("psql rejects the export: %v\n%s", err, out)
	}
	out, err = pg.run("psql", "-h", pg.sock, "-p", pg.port, "-d", "postgres", "-At", "-c", "SELECT count(*), sum(size) FROM pieces")
	if err != nil || !strings.HasPrefix(out, "12|") {
		t.Fatalf("psql query: %v\n%s", err, out)
	}
}

type postgres struct {
	bin, dir, sock, port string
	asUser               string
}

func (pg *postgres) run(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	if name == "psql" {
		cmd = exec.Command("psql", args...)
	}
	if pg.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", pg.asUser, "--", cmd.Path}, args...)...)
	}
	// Run from the server's own directory: the postgres user may not be
	// allowed into the checkout, and psql would warn about it in its output.
	cmd.Dir = pg.sock
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startPostgres runs a throwaway server in a temporary directory (as the
// postgres user when running as root), stopped at cleanup.
func startPostgres(t *testing.T, bin string) *postgres {
	dir, err := os.MkdirTemp("", "fv-pg-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg := &postgres{bin: bin, dir: filepath.Join(dir, "data"), sock: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		must(t, os.Chown(dir, uid, gid))
		must(t, os.Chmod(dir, 0o700))
		pg.asUser = "postgres"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	pg.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if out, err := pg.run("initdb", "-D", pg.dir, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	out, err := pg.run("pg_ctl", "-D", pg.dir, "-w", "-l", filepath.Join(dir, "log"), "start",
		"-o", fmt.Sprintf("-k %s -p %s -c listen_addresses='' -c fsync=off", pg.sock, pg.port))
	if err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	t.Cleanup(func() { pg.run("pg_ctl", "-D", pg.dir, "-m", "immediate", "stop") })
	return pg
}
