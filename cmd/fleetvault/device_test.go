package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// newTestInstallation creates an installation and returns its MBR.
func newTestInstallation(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "inst")
	if code, out, errOut := fvRun(t, "init", "--dir", dir, "--insecure-no-encryption"); code != exitOK {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	return filepath.Join(dir, catalog.MBRFile)
}

// directCLI returns a runner of fleetvault commands on the installation
// mbr directly (no server answers at --server), failing the test when a
// command's exit status is not the one wanted.
func directCLI(t *testing.T, mbr string) func(t *testing.T, want int, args ...string) (string, string) {
	direct := []string{"--server", deadServerURL(t), "--mbr", mbr}
	return func(t *testing.T, want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := fvRun(t, append(args, direct...)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, out, errOut)
		}
		return out, errOut
	}
}

func TestDirectStore(t *testing.T) {
	mbr := newTestInstallation(t)
	cli := directCLI(t, mbr)
	yamlList := filepath.Join(t.TempDir(), "devices.yaml")
	if err := os.WriteFile(yamlList, []byte(`- id: home1-thermostat
  password: home1-secret-pw
  identifier: mqtt://home1-thermostat
  tag: "manufacturer=Acme Corp.; model=xyz; zone=South"
  group: homes
  type: thermostat
- id: home2-thermostat
  password: home2-secret-pw
  tag: {manufacturer: Acme Corp., model: xyz, zone: North}
  group: homes
`), 0o600); err != nil {
		t.Fatal(err)
	}
	csvList := filepath.Join(t.TempDir(), "more.csv")
	if err := os.WriteFile(csvList, []byte("id,group,tag\nref-south,model-house,manufacturer=Acme Corp.; model=xyz; zone=South\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("add generates a password once", func(t *testing.T) {
		out, _ := cli(t, exitOK, "device", "add", "lab-lock", "--identifier", "coap://127.0.0.1:5683", "--tag", "manufacturer=Lockco; model=l1")
		if !strings.Contains(out, "shown only this once") || !strings.Contains(out, "lab-lock") {
			t.Errorf("no generated password shown:\n%s", out)
		}
	})
	t.Run("add twice is refused", func(t *testing.T) {
		_, errOut := cli(t, exitError, "device", "add", "lab-lock")
		if !strings.Contains(errOut, "already exist") || !strings.Contains(errOut, "--replace") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("bad tag is a usage error", func(t *testing.T) {
		_, errOut := cli(t, exitUsage, "device", "add", "x1", "--tag", "=oops")
		if !strings.Contains(errOut, "--tag") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("import YAML and CSV", func(t *testing.T) {
		out, _ := cli(t, exitOK, "device", "import", yamlList)
		if !strings.Contains(out, "added 2 device(s)") || strings.Contains(out, "Generated passwords") {
			t.Errorf("YAML import:\n%s", out)
		}
		out, _ = cli(t, exitOK, "device", "import", csvList)
		if !strings.Contains(out, "added 1 device(s)") || !strings.Contains(out, "ref-south") {
			t.Errorf("CSV import:\n%s", out)
		}
	})
	t.Run("list a group as JSON", func(t *testing.T) {
		out, _ := cli(t, exitOK, "device", "list", "--group", "homes", "--json")
		var ds []apiclient.Device
		if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 2 {
			t.Fatalf("devices %v (%v):\n%s", ds, err, out)
		}
		if z, _ := ds[1].Tag.Get("zone"); z != "North" {
			t.Errorf("home2's tag = %v", ds[1].Tag)
		}
	})
	t.Run("groups", func(t *testing.T) {
		cli(t, exitOK, "group", "create", "Backup Group of Devices", "--description", "phase 1")
		out, _ := cli(t, exitOK, "group", "add", "Backup Group of Devices", "home1-thermostat", "home2-thermostat")
		if !strings.Contains(out, "2 member(s)") {
			t.Errorf("group add:\n%s", out)
		}
		_, errOut := cli(t, exitError, "group", "add", "Backup Group of Device", "home1-thermostat")
		if !strings.Contains(errOut, `did you mean "Backup Group of Devices"?`) {
			t.Errorf("unknown group: %q", errOut)
		}
		_, errOut = cli(t, exitError, "group", "add", "homes", "home3-thermostat")
		if !strings.Contains(errOut, `did you mean "home1-thermostat"?`) {
			t.Errorf("unknown device: %q", errOut)
		}
		out, _ = cli(t, exitOK, "group", "list")
		for _, w := range []string{"Backup Group of Devices", "homes", "model-house", "phase 1"} {
			if !strings.Contains(out, w) {
				t.Errorf("group list lacks %q:\n%s", w, out)
			}
		}
		cli(t, exitUsage, "group", "create", "x", "--kind", "things")
		cli(t, exitError, "group", "create", "homes")
	})
	t.Run("backups list, show, diff", func(t *testing.T) {
		ids := ingestPieces(t, mbr)
		out, _ := cli(t, exitOK, "backups", "list", "--group", "models", "--tag", "zone=South")
		if !strings.Contains(out, "2 backup(s)") || !strings.Contains(out, "ref-south") {
			t.Errorf("backups list:\n%s", out)
		}
		out, _ = cli(t, exitOK, "backups", "show", ids[0])
		if !strings.Contains(out, `"setpoint": 21.5`) {
			t.Errorf("backups show:\n%s", out)
		}
		out, _ = cli(t, exitOK, "backups", "diff", ids[0], ids[1])
		if !strings.Contains(out, "~ /setpoint: 21.5 -> 19") || !strings.Contains(out, "+ /eco: true") {
			t.Errorf("backups diff:\n%s", out)
		}
		_, errOut := cli(t, exitError, "backups", "show", "p-nope")
		if !strings.Contains(errOut, "fleetvault backups list") {
			t.Errorf("unknown backup: %q", errOut)
		}
	})
	t.Run("a server holding the installation", func(t *testing.T) {
		c, err := catalog.Open(mbr, catalog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, errOut := cli(t, exitError, "device", "list")
		if !strings.Contains(errOut, "a server is running") || !strings.Contains(errOut, "--server") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("no server and no installation", func(t *testing.T) {
		code, _, errOut := fvRun(t, "device", "list", "--server", deadServerURL(t))
		if code != exitError || !strings.Contains(errOut, "--mbr") || !strings.Contains(errOut, "fleetvault serve") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

// ingestPieces stores two backups of ref-south's settings in group models.
func ingestPieces(t *testing.T, mbr string) []string {
	t.Helper()
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tag, _ := tagmatch.ParseKV("manufacturer=Acme Corp.; model=xyz; zone=South")
	var nps []catalog.NewPiece
	for _, s := range []agent.Settings{{"setpoint": 21.5, "mode": "heat"}, {"setpoint": 19.0, "mode": "heat", "eco": true}} {
		b, err := agent.EncodeSettings(s)
		if err != nil {
			t.Fatal(err)
		}
		nps = append(nps, catalog.NewPiece{Client: "ref-south", Name: "settings", Type: "settings", Group: "models", Tag: tag, Content: b})
	}
	ps, err := c.Ingest(context.Background(), nps)
	if err != nil {
		t.Fatal(err)
	}
	return []string{ps[0].ID, ps[1].ID}
}

func TestParseDeviceList(t *testing.T) {
	tests := []struct {
		name, file, body string
		want             int
		wantErr          string
	}{
		{"yaml", "d.yaml", "- id: a\n- id: b\n", 2, ""},
		{"csv", "d.csv", "id,tag\na,zone=South\n", 1, ""},
		{"json", "d.json", `[{"id":"a"}]`, 1, ""},
		{"sniffed csv", "-", "id,group\na,homes\n", 1, ""},
		{"sniffed yaml", "-", "devices:\n  - id: a\n", 1, ""},
		{"bad csv column", "d.csv", "id,colour\na,red\n", 0, "unknown column"},
		{"bad yaml", "d.yml", "- id: [\n", 0, "YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nds, err := parseDeviceList(tt.file, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(nds) != tt.want {
				t.Errorf("got %d devices, %v; want %d", len(nds), err, tt.want)
			}
		})
	}
}

func FuzzParseDeviceList(f *testing.F) {
	f.Add("-", "id,tag\na,zone=South\n")
	f.Add("d.yaml", "- id: a\n  tag: {zone: South}\n")
	f.Add("d.json", `[{"id":"a"}]`)
	f.Fuzz(func(t *testing.T, name, body string) {
		_, _ = parseDeviceList(name, []byte(body)) // must not panic
	})
}

func TestRemoteSettings(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "fleetvault.yaml")
	if err := os.WriteFile(conf, []byte("server:\n  url: http://conf:1\n  token: conf-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		args               []string
		env                map[string]string
		config             bool
		wantURL, wantToken string
	}{
		{"defaults", nil, nil, false, defaultServerURL, ""},
		{"config", nil, nil, true, "http://conf:1", "conf-token"},
		{"env over config", nil, map[string]string{"FLEETVAULT_SERVER_URL": "http://env:2/", "FLEETVAULT_SERVER_TOKEN": "env-token"}, true, "http://env:2", "env-token"},
		{"flags over env", []string{"--server", "http://flag:3", "--token", "flag-token"}, map[string]string{"FLEETVAULT_SERVER_URL": "http://env:2"}, true, "http://flag:3", "flag-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FLEETVAULT_SERVER_URL", "")
			t.Setenv("FLEETVAULT_SERVER_TOKEN", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			a := &app{v: viper.New(), stdout: os.Stdout, stderr: os.Stderr}
			var got remote
			c := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
				got = newRemote(cmd, a)
				return nil
			}}
			addServerFlags(c, false)
			root := &cobra.Command{Use: "fleetvault", PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) }}
			root.PersistentFlags().String("config", "", "")
			root.PersistentFlags().String("log-level", "error", "")
			root.PersistentFlags().String("log-format", "text", "")
			root.AddCommand(c)
			args := append([]string{"x"}, tt.args...)
			if tt.config {
				args = append(args, "--config", conf)
			}
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if got.url != tt.wantURL || got.token != tt.wantToken {
				t.Errorf("server %q token %q; want %q %q", got.url, got.token, tt.wantURL, tt.wantToken)
			}
		})
	}
}
