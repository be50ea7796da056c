package simbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/devicesim"
)

// Config is one benchmark run.
type Config struct {
	Devices  int
	Duration time.Duration // of each measurement; default 10s
	Warmup   time.Duration // before the first round of each measurement; default 2s
	// Rounds alternates the ceiling and the probes this many times, each for
	// Duration/Rounds, so a change of load on a shared machine does not favour
	// one side; default 3.
	Rounds      int
	Concurrency int // outstanding round trips at most; default 100 (the broker queues 128 messages per client)
	// BrokerCommand returns the command that runs the MQTT broker in a child
	// process (one that calls ServeBroker with credentialsFile). Nil runs the
	// broker in this process, which then needs two descriptors per device.
	BrokerCommand func(credentialsFile string) *exec.Cmd
	Logger        *slog.Logger
	// InsecureCoAP probes CoAP devices over plain CoAP instead of DTLS
	// (coaps://, a key per device), to measure what DTLS costs.
	InsecureCoAP bool
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	} else if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result is what `fleetvault bench mqtt|coap --json` prints.
type Result struct {
	Transport       string  `json:"transport"`
	Devices         int     `json:"devices"`
	Concurrency     int     `json:"concurrency"`
	CeilingRTPerSec float64 `json:"ceiling_rt_per_s"`
	// MQTT only: the echo ceiling with a paho client on the server side, as
	// agent/mqtt uses, and the probes' ratio to it: how much of the gap to
	// the ceiling is the client library, how much the protocol.
	PahoCeilingRTPerSec float64 `json:"paho_ceiling_rt_per_s,omitempty"`
	PahoRatio           float64 `json:"probe_to_paho_ratio,omitempty"`
	ProbeRTPerSec       float64 `json:"probe_rt_per_s"`
	Ratio               float64 `json:"ratio"`
	RSSMB               float64 `json:"rss_mb"`                  // this process: devices and server side
	BrokerRSSMB         float64 `json:"broker_rss_mb,omitempty"` // the broker's process, when separate
	HeapMB              float64 `json:"heap_mb"`
	Goroutines          int     `json:"goroutines"`
	StartSeconds        float64 `json:"start_seconds"` // bringing the fleet online
	Seconds             float64 `json:"seconds"`       // of the probe measurements, all rounds
	Rounds              int     `json:"rounds"`        // alternations of ceiling and probes
	Requests            uint64  `json:"requests"`      // probes completed
	Errors              uint64  `json:"errors"`        // probes failed
	CeilingRequests     uint64  `json:"ceiling_requests"`
	CeilingErrors       uint64  `json:"ceiling_errors"`
	// CoAP only. DTLS tells whether the probes ran over DTLS (coaps://);
	// CPUMicrosPerProbe is the process's CPU time (devices and transport,
	// both in it) per probe; the handshake figures come from a fresh
	// transport probing every device once, a handshake and a probe each.
	DTLS                  bool    `json:"dtls,omitempty"`
	CPUMicrosPerProbe     float64 `json:"cpu_us_per_probe,omitempty"`
	HandshakesPerSec      float64 `json:"handshakes_per_s,omitempty"`
	CPUMicrosPerHandshake float64 `json:"cpu_us_per_handshake,omitempty"`
}

// FleetSpec returns a fleet of n identical, fault-free devices on transport.
func FleetSpec(n int, transport string) (*devicesim.Spec, error) {
	yaml := fmt.Sprintf(`name: bench-%[2]s
seed: 1
types:
  - name: sensor
    transport: %[2]s
    tag: {manufacturer: Acme Corp., product: climate control, model: xyz, firmware: "2.1.0", zone: "{zone}"}
    settings:
      factory: {setpoint_c: 20, mode: auto, name: "{id}", schedule: [{at: "06:30", c: 20}, {at: "22:00", c: 17}]}
groups:
  - name: bench
    sites: %[1]d
    site: "dev{n:06}"
    vars: {zone: {choice: [North, South]}}
    devices: [{type: sensor}]
`, n, transport)
	return devicesim.Parse("bench.yaml", []byte(yaml))
}

func randomSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RunMQTT starts cfg.Devices MQTT devices and a broker, then measures the
// ceiling (MQTTCeiling) and the probes (agent/mqtt transport) in turn.
func RunMQTT(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	spec, err := FleetSpec(cfg.Devices, devicesim.TransportMQTT)
	if err != nil {
		return nil, err
	}
	fleet, err := devicesim.New(spec, devicesim.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	server := Broker{Username: "bench-server", Password: randomSecret()}
	var brokerProc *BrokerProcess
	if cfg.BrokerCommand != nil {
		dir, err := os.MkdirTemp("", "fleetvault-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		creds := filepath.Join(dir, "credentials.yaml")
		if err := WriteCredentials(creds, fleet.Devices(), map[string]string{server.Username: server.Password}); err != nil {
			return nil, err
		}
		if brokerProc, err = StartBrokerProcess(ctx, cfg.BrokerCommand(creds)); err != nil {
			return nil, err
		}
		defer brokerProc.Close()
		server.URL = brokerProc.URL
	} else {
		url, stop, err := startBroker(ctx, fleet.Devices(), server)
		if err != nil {
			return nil, err
		}
		defer stop()
		server.URL = url
	}
	defer fleet.Close() // before the broker goes: devices would try to reconnect
	if err := fleet.SetBrokerURL(server.URL); err != nil {
		return nil, err
	}
	started := time.Now()
	if err := startAndWait(ctx, fleet); err != nil {
		return nil, err
	}
	res := &Result{Transport: "mqtt", Devices: cfg.Devices, Concurrency: cfg.Concurrency, Rounds: cfg.Rounds, StartSeconds: time.Since(started).Seconds()}
	cfg.Logger.Info("simbench: fleet online", "devices", cfg.Devices, "seconds", res.StartSeconds)

	var ceiling, pahoCeiling, probe Count
	for round := 0; round < cfg.Rounds; round++ {
		warmup := time.Duration(0)
		if round == 0 {
			warmup = cfg.Warmup
		}
		if err := mqttRound(ctx, cfg, server, fleet, warmup, &ceiling, &pahoCeiling, &probe); err != nil {
			return nil, err
		}
	}
	res.fill(ceiling, probe)
	res.PahoCeilingRTPerSec = pahoCeiling.PerSecond()
	if res.PahoCeilingRTPerSec > 0 {
		res.PahoRatio = res.ProbeRTPerSec / res.PahoCeilingRTPerSec
	}
	if brokerProc != nil {
		res.BrokerRSSMB = brokerProc.RSSMB()
	}
	return res, nil
}

// mqttRound measures each phase for Duration/Rounds, adding to the counts.
// The ceilings run before the transport subscribes to the responses: a
// second subscriber would double the broker's work.
func mqttRound(ctx context.Context, cfg Config, server Broker, fleet *devicesim.Fleet, warmup time.Duration, ceiling, pahoCeiling, probe *Count) error {
	d := cfg.Duration / time.Duration(cfg.Rounds)
	if warmup > 0 {
		if _, err := MQTTCeilingCount(ctx, server, fleet, warmup, cfg.Concurrency); err != nil {
			return fmt.Errorf("simbench: ceiling warm-up: %w", err)
		}
	}
	c, err := MQTTCeilingCount(ctx, server, fleet, d, cfg.Concurrency)
	if err != nil {
		return err
	}
	ceiling.add(c)
	if c, err = pahoCeilingCount(ctx, server, fleet, d, cfg.Concurrency); err != nil {
		return err
	}
	pahoCeiling.add(c)
	tr, err := mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: server.URL, Username: server.Username, Password: server.Password})
	if err != nil {
		return err
	}
	defer tr.Close()
	if c, err = measureProbe(ctx, tr, fleet, devicesim.TransportMQTT, warmup, d, cfg.Concurrency); err != nil {
		return err
	}
	probe.add(c)
	return nil
}

// RunCoAP alternates, Rounds times, the CoAP ceiling (CoAPCeiling, against
// endpoints of its own) and the probes (agent/coap transport) against
// cfg.Devices simulated CoAP devices started afresh each round. The two
// fleets never run at once, so the process holds one socket per device.
func RunCoAP(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	spec, err := FleetSpec(cfg.Devices, devicesim.TransportCoAP)
	if err != nil {
		return nil, err
	}
	res := &Result{Transport: "coap", Devices: cfg.Devices, Concurrency: cfg.Concurrency, Rounds: cfg.Rounds, DTLS: !cfg.InsecureCoAP}
	d := cfg.Duration / time.Duration(cfg.Rounds)
	var ceiling, probe Count
	var cpu time.Duration
	for round := 0; round < cfg.Rounds; round++ {
		warmup := time.Duration(0)
		if round == 0 {
			warmup = cfg.Warmup
		}
		c, err := CoAPCeilingCount(ctx, cfg.Devices, "127.0.0.1", d, warmup, cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		ceiling.add(c)
		last := round == cfg.Rounds-1
		if err := coapProbeRound(ctx, cfg, spec, warmup, d, &probe, &cpu, res, last); err != nil {
			return nil, err
		}
	}
	res.setCeiling(ceiling)
	if probe.Requests > 0 {
		res.CPUMicrosPerProbe = float64(cpu.Microseconds()) / float64(probe.Requests)
	}
	return res, nil
}

// coapProbeRound starts the device fleet, probes it for d and, on the last
// round, fills res while the fleet is still up (for its memory figures).
func coapProbeRound(ctx context.Context, cfg Config, spec *devicesim.Spec, warmup, d time.Duration, probe *Count, cpu *time.Duration, res *Result, last bool) error {
	started := time.Now()
	fleet, err := devicesim.New(spec, devicesim.Options{Logger: cfg.Logger, InsecureCoAP: cfg.InsecureCoAP})
	if err != nil {
		return err
	}
	defer fleet.Close()
	if err := startAndWait(ctx, fleet); err != nil {
		return err
	}
	res.StartSeconds = time.Since(started).Seconds()
	if last && !cfg.InsecureCoAP {
		if err := measureHandshakes(ctx, cfg, fleet, res); err != nil {
			return err
		}
	}
	tr, err := coap.NewTransport(coapBenchOptions(cfg, fleet))
	if err != nil {
		return err
	}
	defer tr.Close()
	if !cfg.InsecureCoAP { // open every device's session first: probes, not handshakes, are measured
		if _, err := Once(ctx, tr, fleet, devicesim.TransportCoAP, cfg.Concurrency); err != nil {
			return fmt.Errorf("simbench: DTLS sessions: %w", err)
		}
	}
	if warmup > 0 {
		if _, err := Probe(ctx, tr, fleet, devicesim.TransportCoAP, warmup, cfg.Concurrency); err != nil {
			return fmt.Errorf("simbench: probe warm-up: %w", err)
		}
	}
	before := CPUTime()
	c, err := Probe(ctx, tr, fleet, devicesim.TransportCoAP, d, cfg.Concurrency)
	*cpu += CPUTime() - before
	if err != nil {
		return err
	}
	probe.add(c)
	if last {
		res.fill(Count{}, *probe)
	}
	return nil
}

func measureProbe(ctx context.Context, tr agent.Transport, fleet *devicesim.Fleet, transport string, warmup, d time.Duration, concurrency int) (Count, error) {
	if warmup > 0 {
		if _, err := Probe(ctx, tr, fleet, transport, warmup, concurrency); err != nil {
			return Count{}, fmt.Errorf("simbench: probe warm-up: %w", err)
		}
	}
	return Probe(ctx, tr, fleet, transport, d, concurrency)
}

func (r *Result) fill(ceiling, probe Count) {
	r.ProbeRTPerSec, r.Requests, r.Errors, r.Seconds = probe.PerSecond(), probe.Requests, probe.Errors, probe.Seconds
	r.setCeiling(ceiling)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.RSSMB, r.HeapMB, r.Goroutines = RSSMB(0), float64(ms.HeapInuse)/(1<<20), runtime.NumGoroutine()
}

func (r *Result) setCeiling(ceiling Count) {
	r.CeilingRTPerSec, r.CeilingRequests, r.CeilingErrors = ceiling.PerSecond(), ceiling.Requests, ceiling.Errors
	if r.CeilingRTPerSec > 0 {
		r.Ratio = r.ProbeRTPerSec / r.CeilingRTPerSec
	}
}

func startAndWait(ctx context.Context, fleet *devicesim.Fleet) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := fleet.Start(ctx); err != nil {
		return err
	}
	return fleet.WaitOnline(ctx)
}

// startBroker runs the embedded broker in this process.
func startBroker(ctx context.Context, devices []devicesim.DeviceInfo, server Broker) (string, func(), error) {
	creds := broker.StaticCredentials{}
	add := func(name, pw string, role broker.Role) error {
		h, err := broker.HashPassword(pw)
		creds[name] = broker.Identity{Name: name, Role: role, PasswordHash: h}
		return err
	}
	for _, d := range devices {
		if err := add(d.ID, d.Password, broker.RoleDevice); err != nil {
			return "", nil, err
		}
	}
	if err := add(server.Username, server.Password, broker.RoleServer); err != nil {
		return "", nil, err
	}
	b, err := broker.New(broker.Options{TCPAddr: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		return "", nil, err
	}
	bctx, cancel := context.WithCancel(ctx)
	if err := b.Start(bctx); err != nil {
		cancel()
		return "", nil, err
	}
	return "mqtt://" + b.Addr().String(), func() { cancel(); b.Close() }, nil
}

// coapBenchOptions is the transport of a CoAP measurement: over DTLS with
// the fleet's keys, or plain CoAP when cfg says so.
func coapBenchOptions(cfg Config, fleet *devicesim.Fleet) coap.TransportOptions {
	keys := map[string][]byte{}
	for _, d := range fleet.Devices() {
		if d.CoAPKey != nil {
			keys[d.ID] = d.CoAPKey
		}
	}
	return coap.TransportOptions{Listen: "127.0.0.1:0", Insecure: cfg.InsecureCoAP,
		Keys: func(_ context.Context, id string) ([]byte, error) {
			if k, ok := keys[id]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("device %s: %w", id, coap.ErrNoKey)
		}}
}

// measureHandshakes probes every device of fleet once through a fresh
// transport: a DTLS handshake and a probe each.
func measureHandshakes(ctx context.Context, cfg Config, fleet *devicesim.Fleet, res *Result) error {
	tr, err := coap.NewTransport(coapBenchOptions(cfg, fleet))
	if err != nil {
		return err
	}
	defer tr.Close()
	before := CPUTime()
	c, err := Once(ctx, tr, fleet, devicesim.TransportCoAP, cfg.Concurrency)
	cpu := CPUTime() - before
	if err != nil {
		return fmt.Errorf("simbench: handshakes: %w", err)
	}
	res.HandshakesPerSec = c.PerSecond()
	if c.Requests > 0 {
		res.CPUMicrosPerHandshake = float64(cpu.Microseconds()) / float64(c.Requests)
	}
	return nil
}

// CPUTime is the CPU time this process has used, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
