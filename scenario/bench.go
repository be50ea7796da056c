package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/devicesim/simbench"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/server"
)

// BenchConfig is one run of the restore benchmark.
type BenchConfig struct {
	Devices     int           // target devices
	Transport   string        // devicesim.TransportMQTT or TransportCoAP
	Concurrency int           // devices in flight, and outstanding ceiling round trips (default 512)
	Ceiling     time.Duration // how long the ceiling is measured (default 5s)
	PerChild    int           // devices per fleet child process (default 15,000)
	// Child returns the command that runs a fleet child with these extra
	// arguments (the fleetvault binary: `bench fleet-child ARGS...`).
	Child  func(args ...string) *exec.Cmd
	Logger *slog.Logger
	// CPUProfile, if set, receives a CPU profile of this process (the
	// server) during the restore job only, without the fleet's start and
	// the ceiling.
	CPUProfile io.Writer
	// Shards spreads MQTT devices over this many broker shard processes of
	// ShardKind (ShardEmbedded: Broker runs `fleetvault broker ARGS...`;
	// ShardMosquitto), each holding its devices' connections; 0 keeps them
	// all on the server's embedded broker.
	Shards    int
	ShardKind string
	Broker    func(args ...string) *exec.Cmd
}

// BenchResult is what `fleetvault bench restore --json` prints.
type BenchResult struct {
	Transport       string                     `json:"transport"`
	Devices         int                        `json:"devices"`
	Concurrency     int                        `json:"concurrency"`
	Seconds         float64                    `json:"seconds"`
	DevicesPerSec   float64                    `json:"devices_per_s"`
	CeilingRTPerSec float64                    `json:"ceiling_rt_per_s"`
	Ratio           float64                    `json:"ratio"` // devices_per_s / (ceiling / 2): a restore is two round trips
	PeakRSSMB       float64                    `json:"peak_rss_mb"`
	ServerRSSMB     float64                    `json:"server_peak_rss_mb"`
	FleetRSSMB      float64                    `json:"fleet_peak_rss_mb"`
	FleetProcesses  int                        `json:"fleet_processes"`
	StartSeconds    float64                    `json:"fleet_start_seconds"`
	Shards          int                        `json:"shards,omitempty"`
	ShardKind       string                     `json:"shard_kind,omitempty"`
	ShardRSSMB      float64                    `json:"shards_peak_rss_mb,omitempty"` // the shard processes, added up
	Counts          map[grouprestore.State]int `json:"counts"`
	Mismatches      int                        `json:"ground_truth_mismatches"`
	// Phases are the server's memory in each phase (start: server up and
	// the fleet online; ceiling; restore); ServerRSSMB is their largest peak.
	Phases []PhaseMemory `json:"server_phases"`
	// Load1 is the machine's load average over the minute before the run
	// (/proc/loadavg): on a shared machine, figures taken above the number
	// of cores are not comparable. GOGC is the variable as the process saw it.
	Load1 float64 `json:"load_average_1m"`
	GOGC  string  `json:"gogc,omitempty"`
}

// benchFleet writes a fleet file: count climate controls in zones North and
// South, named with prefix, plus (with refs) a North and a South reference.
func benchFleet(count int, transport, prefix string, refs bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `name: bench-%[1]s
seed: 7
types:
  - name: climate
    transport: %[2]s
    tag: {manufacturer: Acme Corp., product: climate control, model: xyz, firmware: "2.1.0", zone: "{zone}"}
    settings:
      factory: {name: "{id}", mode: auto, setpoint_c: 20, schedule: {weekday: [{at: "06:30", c: 20}, {at: "22:00", c: 17}]}}
      reference:
        - when: {zone: North}
          set: {mode: heat, setpoint_c: 21.5, humidity_target: 40}
        - when: {zone: South}
          set: {mode: cool, setpoint_c: 24, humidity_target: 55}
groups:
  - name: %[1]s-targets
    sites: %[3]d
    site: "%[1]s-{n:06}"
    vars: {zone: {choice: [North, South]}}
    devices: [{type: climate}]
`, prefix, transport, count)
	if refs {
		for _, z := range []string{"North", "South"} {
			fmt.Fprintf(&b, "  - {name: reference-%[1]s, reference: true, site: ref-%[1]s, vars: {zone: %[2]s}, devices: [{type: climate}]}\n", strings.ToLower(z), z)
		}
	}
	return b.String()
}

// fleetChild is a running fleet child process.
type fleetChild struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	devices []devicesim.DeviceInfo
}

func (c *fleetChild) send(cmd string) (string, error) {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return "", fmt.Errorf("fleet child: %s: %w", cmd, err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("fleet child: %s: no answer: %w", cmd, err)
	}
	return strings.TrimSpace(line), nil
}

func (c *fleetChild) close() {
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// benchEnv is a benchmark's running server and fleet children.
type benchEnv struct {
	srv      *server.Server
	children []*fleetChild
	all      []devicesim.DeviceInfo
	targets  []string
	started  float64   // seconds to bring the fleet online
	shards   *shardSet // nil: devices on the server's embedded broker
	close    func()
}

// startBench creates an installation and a server, starts the fleet
// children, provisions their devices and brings them online.
func startBench(ctx context.Context, cfg *BenchConfig) (env *benchEnv, err error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 512
	}
	if cfg.Ceiling <= 0 {
		cfg.Ceiling = 5 * time.Second
	}
	if cfg.PerChild <= 0 {
		cfg.PerChild = 15000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport != devicesim.TransportMQTT && cfg.Transport != devicesim.TransportCoAP {
		return nil, fmt.Errorf("transport %q: give mqtt or coap", cfg.Transport)
	}
	if cfg.Shards > 0 && cfg.Transport != devicesim.TransportMQTT {
		return nil, fmt.Errorf("broker shards are for MQTT devices, not %s", cfg.Transport)
	}
	if cfg.Transport == devicesim.TransportMQTT && cfg.Shards == 0 && cfg.Devices > fdBudget() {
		return nil, fmt.Errorf("%d MQTT devices need %d connections in the broker's process, over this process's limit of %d open files (ulimit -n); raise the limit or measure fewer devices", cfg.Devices, cfg.Devices, fdBudget())
	}
	env = &benchEnv{}
	var closers []func()
	env.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	dir, err := os.MkdirTemp("", "fleetvault-bench-")
	if err != nil {
		return env, err
	}
	closers = append(closers, func() { os.RemoveAll(dir) })
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		return env, err
	}
	opts := server.Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", Logger: cfg.Logger}
	if cfg.Shards > 0 {
		if env.shards, err = planShards(*cfg, dir); err != nil {
			return env, err
		}
		opts.Shards = env.shards.serverShards()
		closers = append(closers, env.shards.close)
	}
	if env.srv, err = server.Start(ctx, opts); err != nil {
		return env, err
	}
	closers = append(closers, func() { env.srv.Close() })
	brokerOf := func(int) string { return env.srv.BrokerURL() }
	if env.shards != nil {
		brokerOf = func(child int) string { return env.shards.url(child % cfg.Shards) }
	}
	env.children, err = startChildren(ctx, *cfg, dir, brokerOf)
	closers = append(closers, func() {
		for _, c := range env.children {
			c.close()
		}
	})
	if err != nil {
		return env, err
	}
	for i, c := range env.children {
		if env.shards != nil {
			env.shards.route(i, c.devices)
		}
		for _, d := range c.devices {
			if d.Reference {
				d.Group = "reference"
			} else {
				d.Group, env.targets = "targets", append(env.targets, d.ID)
			}
			env.all = append(env.all, d)
		}
	}
	if err := Provision(ctx, env.srv.Catalog, env.all); err != nil {
		return env, err
	}
	if env.shards != nil {
		if err := env.shards.start(ctx, *cfg, env.srv, env.children); err != nil {
			return env, err
		}
	}
	t0 := time.Now()
	for _, c := range env.children {
		if ans, err := c.send("start"); err != nil || ans != "ready" {
			return env, fmt.Errorf("fleet child did not come online: %q %v", ans, err)
		}
	}
	env.started = time.Since(t0).Seconds()
	return env, nil
}

// fleetRSSMB is the children's peak resident memory, added up.
func (env *benchEnv) fleetRSSMB() float64 {
	var mb float64
	for _, c := range env.children {
		mb += simbench.PeakRSSMB(c.cmd.Process.Pid)
	}
	return mb
}

// BenchRestore measures, in one run, the round-trip ceiling of the transport
// stack and a full group restore (probe, match, snapshot, write, verify,
// journal) of cfg.Devices simulated devices, and checks the ground truth.
func BenchRestore(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	load1 := simbench.LoadAverage()
	phase := startPhase("start")
	env, err := startBench(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()
	srv := env.srv
	res := &BenchResult{Transport: cfg.Transport, Devices: len(env.targets), Concurrency: cfg.Concurrency, FleetProcesses: len(env.children),
		StartSeconds: env.started, Load1: load1, GOGC: os.Getenv("GOGC")}
	res.Phases = append(res.Phases, phase.end())
	phase = startPhase("ceiling")
	if env.shards != nil {
		// The ceiling is an echo through the embedded broker, which holds no
		// devices here: sharded runs report none.
		res.Shards, res.ShardKind = cfg.Shards, cfg.ShardKind
	} else if res.CeilingRTPerSec, err = ceiling(ctx, cfg, srv, env.children, env.targets); err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	res.Phases = append(res.Phases, phase.end())
	phase = startPhase("restore")
	refHash, err := backupReferences(ctx, srv, env.all)
	if err != nil {
		return nil, err
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	j, err := srv.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindRestore, Source: "bench-reference", Target: "targets",
		Rollout: grouprestore.Rollout{Concurrency: cfg.Concurrency, Timeout: 10 * time.Second, Retries: 2}})
	if err != nil {
		pprof.StopCPUProfile()
		return nil, err
	}
	p, err := j.Wait(ctx)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return nil, err
	}
	res.Seconds, res.Counts = p.Elapsed.Seconds(), p.Counts
	res.DevicesPerSec = float64(p.Total) / res.Seconds
	if res.CeilingRTPerSec > 0 {
		res.Ratio = res.DevicesPerSec / (res.CeilingRTPerSec / 2)
	}
	res.Phases = append(res.Phases, phase.end())
	res.FleetRSSMB = env.fleetRSSMB()
	for _, ph := range res.Phases {
		res.ServerRSSMB = max(res.ServerRSSMB, ph.PeakRSSMB)
	}
	if env.shards != nil {
		res.ShardRSSMB = env.shards.peakRSSMB()
	}
	res.PeakRSSMB = res.ServerRSSMB + res.FleetRSSMB + res.ShardRSSMB
	if res.Mismatches, err = checkChildren(env.children, j.ID(), refHash, p); err != nil {
		return nil, err
	}
	return res, nil
}

// ProbeResult is what `fleetvault bench mqtt --stack embedded --json` prints.
type ProbeResult struct {
	Stack           string  `json:"stack"`
	Devices         int     `json:"devices"`
	Concurrency     int     `json:"concurrency"`
	CeilingRTPerSec float64 `json:"ceiling_rt_per_s"`
	ProbeRTPerSec   float64 `json:"probe_rt_per_s"`
	Ratio           float64 `json:"ratio"`
	RSSMB           float64 `json:"rss_mb"` // server and fleet processes, peak
	Requests        uint64  `json:"requests"`
	Errors          uint64  `json:"errors"`
	Seconds         float64 `json:"seconds"`
}

// BenchProbe measures the production MQTT stack with the embedded broker:
// the ceiling (an 8-byte echo through the broker's in-process client and the
// devices' connections) and then READ:SETTINGS?TAG probes through the
// server's in-process transport, each for cfg.Ceiling.
func BenchProbe(ctx context.Context, cfg BenchConfig) (*ProbeResult, error) {
	cfg.Transport = devicesim.TransportMQTT
	env, err := startBench(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()
	res := &ProbeResult{Stack: "embedded", Devices: len(env.targets), Concurrency: cfg.Concurrency}
	if res.CeilingRTPerSec, err = ceiling(ctx, cfg, env.srv, env.children, env.targets); err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	ids := make([]identifiers.ID, len(env.targets))
	for i, id := range env.targets {
		ids[i] = identifiers.ReadTag("mqtt", id, 0)
	}
	var next, ok, failed atomic.Uint64
	start := time.Now()
	deadline := start.Add(cfg.Ceiling)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := env.srv.MQTT.Do(cctx, ids[next.Add(1)%uint64(len(ids))], &agent.Request{})
				cancel()
				if err != nil || resp.Err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Requests, res.Errors = ok.Load(), failed.Load()
	res.ProbeRTPerSec = float64(res.Requests) / res.Seconds
	if res.CeilingRTPerSec > 0 {
		res.Ratio = res.ProbeRTPerSec / res.CeilingRTPerSec
	}
	res.RSSMB = simbench.PeakRSSMB(0) + env.fleetRSSMB()
	return res, nil
}

// startChildren starts the fleet children, child i connecting to
// brokerOf(i). With shards, every shard gets at least one child and the
// devices are spread evenly.
func startChildren(ctx context.Context, cfg BenchConfig, dir string, brokerOf func(child int) string) ([]*fleetChild, error) {
	var children []*fleetChild
	per := cfg.PerChild
	if cfg.Shards > 0 {
		count := max(cfg.Shards, (cfg.Devices+cfg.PerChild-1)/cfg.PerChild)
		count = (count + cfg.Shards - 1) / cfg.Shards * cfg.Shards // the same number on every shard
		per = (cfg.Devices + count - 1) / count
	}
	for i, left := 0, cfg.Devices; left > 0; i++ {
		n := min(left, per)
		left -= n
		spec := filepath.Join(dir, fmt.Sprintf("fleet-%d.yaml", i))
		if err := os.WriteFile(spec, []byte(benchFleet(n, cfg.Transport, fmt.Sprintf("f%d", i), i == 0)), 0o600); err != nil {
			return children, err
		}
		out := filepath.Join(dir, fmt.Sprintf("devices-%d.json", i))
		// Each child's CoAP devices get a loopback address of their own: one
		// address has only ~28,000 ephemeral ports.
		cmd := cfg.Child("--fleet", spec, "--broker", brokerOf(i), "--devices-out", out, "--coap-host", fmt.Sprintf("127.0.0.%d", i+1))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return children, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return children, err
		}
		if err := cmd.Start(); err != nil {
			return children, fmt.Errorf("start fleet child: %w", err)
		}
		c := &fleetChild{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
		children = append(children, c)
		if line, err := c.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "devices" {
			return children, fmt.Errorf("fleet child %d failed to plan its fleet (%q, %v)", i, line, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return children, err
		}
		if err := json.Unmarshal(b, &c.devices); err != nil {
			return children, fmt.Errorf("fleet child %d: devices: %w", i, err)
		}
	}
	return children, nil
}

// ceiling measures the round trips per second of the transport stack without
// the agent protocol: MQTT devices echo an 8-byte request through the same
// broker and connections; CoAP uses minimal go-coap endpoints (as bench coap).
func ceiling(ctx context.Context, cfg BenchConfig, srv *server.Server, children []*fleetChild, targets []string) (float64, error) {
	if cfg.Transport == devicesim.TransportCoAP {
		c, err := simbench.CoAPCeilingCount(ctx, min(len(targets), 10000), "127.0.0.1", cfg.Ceiling, time.Second, cfg.Concurrency)
		return c.PerSecond(), err
	}
	for _, c := range children {
		if _, err := c.send("echo on"); err != nil {
			return 0, err
		}
	}
	defer func() {
		for _, c := range children {
			c.send("echo off")
		}
	}()
	return inlineCeiling(ctx, srv.Broker, targets, cfg.Ceiling, cfg.Concurrency)
}

// inlineCeiling publishes 8-byte requests in process, as the server's inline
// transport does, and counts the echoes that come back.
func inlineCeiling(ctx context.Context, b *broker.Broker, ids []string, d time.Duration, concurrency int) (float64, error) {
	echoes := simbench.NewEchoes()
	cancel, err := b.Subscribe(agent.ResponseWildcard, func(_ string, p []byte) { echoes.Deliver(p) })
	if err != nil {
		return 0, err
	}
	defer cancel()
	topics := make([]string, len(ids))
	for i, id := range ids {
		topics[i] = agent.RequestTopic(id)
	}
	c, err := simbench.Drive(ctx, d, concurrency, len(topics), func(ctx context.Context, i int) error {
		return echoes.RoundTrip(ctx, func(p []byte) error { return b.Publish(topics[i], p, 1) })
	})
	return c.PerSecond(), err
}

// backupReferences backs up the reference devices and returns the hash of
// each zone's reference settings.
func backupReferences(ctx context.Context, srv *server.Server, all []devicesim.DeviceInfo) (map[string]string, error) {
	j, err := srv.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "reference", Target: "bench-reference",
		Rollout: grouprestore.Rollout{Timeout: 10 * time.Second, Retries: 2}}) // as the restore: a loaded machine is slow
	if err != nil {
		return nil, err
	}
	if _, err := j.Wait(ctx); err != nil {
		return nil, err
	}
	zoneOf := map[string]string{}
	for _, d := range all {
		zoneOf[d.ID], _ = d.Tag.Get("zone")
	}
	out := map[string]string{}
	for _, o := range j.Devices() {
		if o.State != grouprestore.BackedUp {
			return nil, fmt.Errorf("backup of reference %s: %s", o.Device, o.Reason)
		}
		out[zoneOf[o.Device]] = o.Hash
	}
	return out, nil
}

// checkChildren compares the fleet's ground truth with the job's report.
func checkChildren(children []*fleetChild, job string, refHash map[string]string, p grouprestore.Progress) (int, error) {
	var t ChildTruth
	t.HoldsZone, t.SentZone = map[string]int{}, map[string]int{}
	for _, c := range children {
		line, err := c.send("truth " + job)
		if err != nil {
			return 0, err
		}
		var ct ChildTruth
		if err := json.Unmarshal([]byte(line), &ct); err != nil {
			return 0, fmt.Errorf("fleet child truth: %w", err)
		}
		t.Devices += ct.Devices
		t.Written += ct.Written
		t.Multi += ct.Multi
		for k, v := range ct.HoldsZone {
			t.HoldsZone[k] += v
		}
		for k, v := range ct.SentZone {
			t.SentZone[k] += v
		}
	}
	mismatches := t.Multi
	for k, n := range t.SentZone {
		zone, hash, _ := strings.Cut(k, "/")
		if hash != refHash[zone] {
			mismatches += n // written settings of the other zone, or of nothing
		}
	}
	holding := 0
	for zone, h := range refHash {
		holding += t.HoldsZone[zone+"/"+h]
	}
	if r := p.Counts[grouprestore.Restored]; holding < r {
		mismatches += r - holding // reported restored but not holding the settings
	}
	return mismatches, nil
}

// fdBudget is how many connections this process can hold: its open-file
// limit less a margin for files, sockets and listeners.
func fdBudget() int {
	var lim int
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(line)
				if len(f) >= 5 {
					lim, _ = strconv.Atoi(f[3])
				}
			}
		}
	}
	if lim == 0 {
		return 1 << 30
	}
	return lim - 200
}
