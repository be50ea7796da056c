package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/devicesim"
)

func TestSim(t *testing.T) {
	const file = "testdata/sim-small.yaml"
	spec, err := devicesim.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// The same file and seed give the same secrets: provision the broker first.
	f, err := devicesim.New(spec, devicesim.Options{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	creds, online := map[string]string{}, 0
	for _, d := range f.Devices() {
		creds[d.ID] = d.Password
		if !d.Faults.Offline {
			online++
		}
	}
	f.Close()
	b := brokertest.Start(t, brokertest.Credentials(t, creds, nil))
	var connected atomic.Int64
	b.OnConnect(func(string) { connected.Add(1) })

	out := filepath.Join(t.TempDir(), "devices.yaml")
	var logs bytes.Buffer
	a := &app{stdout: &bytes.Buffer{}, stderr: &logs, log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runSim(ctx, a, simOptions{fleet: file, broker: brokertest.URL(b), seed: 9, devicesOut: out, summary: time.Second, mqttVersion: 4})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for connected.Load() < int64(online) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := connected.Load(); got < int64(online) {
		t.Fatalf("%d devices connected, want %d", got, online)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := devicesim.ParseDeviceList(out, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(creds) || recs[0].Password != creds[recs[0].ID] {
		t.Fatalf("device list: %d records, first %+v", len(recs), recs[0])
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("device list mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "sim: stopping") {
		t.Errorf("no final summary in the log:\n%s", logs.String())
	}
}

func TestSimUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no fleet", []string{"sim"}, exitUsage, "--fleet is required"},
		{"unknown fleet", []string{"sim", "--fleet", "nowhere"}, exitError, "no shipped fleet"},
		{"no broker", []string{"sim", "--fleet", "testdata/sim-small.yaml"}, exitError, "broker URL is needed"},
		{"bad fleet file", []string{"sim", "--fleet", "testdata/sim-bad.yaml"}, exitError, "types[0].faults.offline"},
		{"bad version", []string{"sim", "--fleet", "model-house", "--mqtt-version", "3"}, exitUsage, "--mqtt-version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := simCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tt.code, out, errs, tt.want)
			}
		})
	}
}

// simCLI runs fleetvault with args and returns its exit code and output.
func simCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}
