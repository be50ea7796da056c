package simbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
)

// brokerEnv makes the test binary a broker child (see brokerCommand).
const brokerEnv = "SIMBENCH_TEST_BROKER_CREDENTIALS"

func TestMain(m *testing.M) {
	if creds := os.Getenv(brokerEnv); creds != "" {
		if err := ServeBroker(context.Background(), creds, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func brokerCommand(creds string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), brokerEnv+"="+creds)
	return cmd
}

func TestRun(t *testing.T) {
	cases := []struct {
		name string
		run  func(context.Context, Config) (*Result, error)
		cfg  Config
	}{
		{"mqtt in process", RunMQTT, Config{}},
		{"mqtt broker process", RunMQTT, Config{BrokerCommand: brokerCommand}},
		{"coap", RunCoAP, Config{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Devices, cfg.Duration, cfg.Warmup, cfg.Concurrency, cfg.Rounds = 40, 400*time.Millisecond, 100*time.Millisecond, 8, 2
			res, err := c.run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", *res)
			if res.Requests == 0 || res.CeilingRequests == 0 || res.Errors != 0 || res.CeilingErrors != 0 {
				t.Errorf("result %+v: want round trips and no errors", *res)
			}
			if res.Ratio <= 0 || res.RSSMB <= 0 {
				t.Errorf("result %+v: want a ratio and a memory figure", *res)
			}
			if cfg.BrokerCommand != nil && res.BrokerRSSMB <= 0 {
				t.Errorf("no broker memory figure")
			}
		})
	}
}

// TestMemory10k starts 10,000 MQTT devices against a broker in a child
// process and checks the devices' process stays within 1 GiB.
func TestMemory10k(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10,000 MQTT devices")
	}
	const n = 10_000
	spec, err := FleetSpec(n, devicesim.TransportMQTT)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := devicesim.New(spec, devicesim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	creds := t.TempDir() + "/credentials.yaml"
	if err := WriteCredentials(creds, fleet.Devices(), nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bp, err := StartBrokerProcess(ctx, brokerCommand(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close()
	if err := fleet.SetBrokerURL(bp.URL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := startAndWait(ctx, fleet); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := RSSMB(0)
	t.Logf("%d MQTT devices online in %.1fs: process RSS %.0f MiB, heap in use %.0f MiB, Sys %.0f MiB, %d goroutines; broker process RSS %.0f MiB",
		n, time.Since(start).Seconds(), rss, float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), runtime.NumGoroutine(), bp.RSSMB())
	if st := fleet.Stats(); st.Online != n {
		t.Errorf("%d of %d online", st.Online, n)
	}
	if rss == 0 || rss > 1024 {
		t.Errorf("RSS %.0f MiB: want within 1 GiB", rss)
	}
}

// TestRunFromEnv runs a full benchmark when SIMBENCH_DEVICES is set, e.g.
//
//	SIMBENCH_DEVICES=10000 SIMBENCH_TRANSPORT=coap go test -run TestRunFromEnv -v ./devicesim/simbench
//
// It is the bench commands' code without the CLI around it.
func TestRunFromEnv(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIMBENCH_DEVICES"))
	if n <= 0 {
		t.Skip("SIMBENCH_DEVICES not set")
	}
	cfg := Config{Devices: n, BrokerCommand: brokerCommand}
	if d, err := time.ParseDuration(os.Getenv("SIMBENCH_DURATION")); err == nil {
		cfg.Duration = d
	}
	if c, _ := strconv.Atoi(os.Getenv("SIMBENCH_CONCURRENCY")); c > 0 {
		cfg.Concurrency = c
	}
	run := RunMQTT
	if os.Getenv("SIMBENCH_TRANSPORT") == "coap" {
		run = RunCoAP
	}
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", b)
}
