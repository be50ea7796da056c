package coap

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// fleet is n devices on loopback ports, served in one Group.
type fleet struct {
	group   *Group
	servers []*Server
	targets []identifiers.ID
	wg      sync.WaitGroup
}

func startFleet(tb testing.TB, n int) *fleet {
	tb.Helper()
	f := &fleet{group: NewGroup()}
	for i := range n {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			f.close()
			tb.Fatalf("device %d: %v", i, err)
		}
		port := conn.LocalAddr().(*net.UDPAddr).Port
		addr := "127.0.0.1:" + strconv.Itoa(port)
		h := agent.NewHandler(fmt.Sprintf("dev-%05d", i), newFakeDevice("North"), agent.HandlerOptions{Addresses: []string{addr}})
		s := NewServer(conn, h, ServerOptions{Group: f.group})
		f.servers = append(f.servers, s)
		f.targets = append(f.targets, identifiers.ReadTag("coap", "127.0.0.1", port))
		f.wg.Go(func() { _ = s.Serve(context.Background()) })
	}
	tb.Cleanup(f.close)
	return f
}

func (f *fleet) close() {
	for _, s := range f.servers {
		_ = s.Close()
	}
	f.wg.Wait()
	f.group.Close()
}

// probe reads the tag of every target once, with workers in parallel.
func probe(ctx context.Context, tr *Transport, targets []identifiers.ID, workers int, rounds int) (ok, failed int64) {
	n := len(targets) * rounds
	failN := runWorkers(n, workers, func(i int) error {
		resp, err := tr.Do(ctx, targets[i%len(targets)], &agent.Request{})
		if err == nil && resp.Err != nil {
			err = resp.Err
		}
		return err
	})
	return int64(n) - failN, failN
}

// runWorkers calls fn(0..n-1) from workers goroutines and returns how many
// calls failed.
func runWorkers(n, workers int, fn func(i int) error) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if fn(int(i)) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// benchEnv reads an integer knob of the benchmarks from the environment.
func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func benchDevices() int { return benchEnv("FLEETVAULT_BENCH_DEVICES", 1000) }
func benchWorkers() int { return benchEnv("FLEETVAULT_BENCH_WORKERS", 64) }

// probeRun is one timed phase: a fleet, and a function probing target i.
type probeRun struct {
	do    func(ctx context.Context, i int) error
	close func()
}

// startTransportRun serves devices agent devices and probes them through a Transport.
func startTransportRun(tb testing.TB, devices int) probeRun {
	f := startFleet(tb, devices)
	tr, err := NewTransport(TransportOptions{Insecure: true})
	if err != nil {
		f.close()
		tb.Fatal(err)
	}
	do := func(ctx context.Context, i int) error {
		resp, err := tr.Do(ctx, f.targets[i%devices], &agent.Request{})
		if err == nil && resp.Err != nil {
			err = resp.Err
		}
		return err
	}
	return probeRun{do: do, close: func() { _ = tr.Close(); f.close() }}
}

// startCeilingRun is the ceiling: the same sockets (one client socket, one
// per device, loopback) and the same go-coap stack, configured as the
// transport and the device server were before they got their lean paths, but
// nothing of ours: the devices answer every GET with a canned tag Response,
// and the client sends the probe's path and queries and reads the payload
// without decoding it.
func startCeilingRun(tb testing.TB, devices int) probeRun {
	addrs, closeDevices := startEchoDevices(tb, devices)
	conns, closeClient := startEchoClient(tb, addrs)
	ident := identifiers.ReadTag("coap", "127.0.0.1", 5683).String()
	query := []message.Option{
		{ID: message.URIQuery, Value: []byte("v=1")},
		{ID: message.URIQuery, Value: []byte("id=0123456789ab-1a2b")},
		{ID: message.URIQuery, Value: []byte("ident=" + ident)},
	}
	do := func(ctx context.Context, i int) error {
		cc := conns[i%devices]
		m, err := cc.Get(ctx, PathTag, query...)
		if err != nil {
			return err
		}
		defer cc.ReleaseMessage(m)
		if _, err := m.ReadBody(); err != nil {
			return err
		}
		if m.Code() != codes.Content {
			return fmt.Errorf("answer %v", m.Code())
		}
		return nil
	}
	return probeRun{do: do, close: func() { closeClient(); closeDevices() }}
}

// startEchoDevices serves n go-coap devices that answer any request with a
// canned tag Response.
func startEchoDevices(tb testing.TB, n int) ([]*net.UDPAddr, func()) {
	stop := make(chan struct{})
	runner := periodic.New(stop, time.Second)
	msgs := pool.New(1024, 2048)
	tag := newFakeDevice("North").tag
	answer, err := agent.EncodeResponse(&agent.Response{V: agent.Version, ID: "0123456789ab-1a2b", Device: "dev-00000", Caps: agent.Capabilities(), Tag: tag})
	if err != nil {
		tb.Fatal(err)
	}
	var (
		servers []*udpserver.Server
		addrs   []*net.UDPAddr
		wg      sync.WaitGroup
	)
	closeDevices := func() {
		for _, s := range servers {
			s.Stop()
		}
		wg.Wait()
		close(stop)
	}
	for i := range n {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			closeDevices()
			tb.Fatalf("ceiling device %d: %v", i, err)
		}
		s := udpserver.New(
			options.WithHandlerFunc(udpclient.HandlerFunc(func(w *responsewriter.ResponseWriter[*udpclient.Conn], _ *pool.Message) {
				_ = w.SetResponse(codes.Content, message.AppCBOR, bytes.NewReader(answer))
			})),
			options.WithMaxMessageSize(DefaultMaxDatagram),
			options.WithBlockwise(true, blockSZX, blockwiseTimeout),
			options.WithPeriodicRunner(runner),
			options.WithMessagePool(msgs),
			options.WithInactivityMonitor(deviceIdle, func(cc *udpclient.Conn) { _ = cc.Close() }),
			options.WithReceivedMessageQueueSize(4),
		)
		servers = append(servers, s)
		addrs = append(addrs, conn.LocalAddr().(*net.UDPAddr))
		wg.Go(func() { _ = s.Serve(coapnet.NewUDPConn("udp", conn)) })
	}
	return addrs, closeDevices
}

// startEchoClient opens a go-coap connection to each of addrs from one
// go-coap UDP server socket.
func startEchoClient(tb testing.TB, addrs []*net.UDPAddr) ([]*udpclient.Conn, func()) {
	stop := make(chan struct{})
	started := make(chan struct{})
	ticker := periodic.New(stop, time.Second)
	client := udpserver.New(
		options.WithPeriodicRunner(func(f func(time.Time) bool) { ticker(f); close(started) }),
		options.WithMaxMessageSize(transportMaxDatagram),
		options.WithBlockwise(true, blockSZX, blockwiseTimeout),
		options.WithTransmission(1, DefaultAckTimeout, DefaultMaxRetransmit),
		options.WithMessagePool(pool.New(4096, 2048)),
	)
	conn, err := listenDeep(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = client.Serve(coapnet.NewUDPConn("udp", conn)) })
	closeClient := func() {
		client.Stop()
		wg.Wait()
		close(stop)
	}
	<-started
	conns := make([]*udpclient.Conn, len(addrs))
	for i, a := range addrs {
		if conns[i], err = client.NewConn(a); err != nil {
			closeClient()
			tb.Fatal(err)
		}
	}
	return conns, closeClient
}

// phase is what one timed phase measured: probes per second of wall time,
// and the process's CPU time (user and system, both sides of the exchange)
// per probe, which a machine shared with other work disturbs far less.
type phase struct {
	rate float64
	cpu  time.Duration
}

// timePhase warms every device up (exchange state on both sides), then
// times n probes from workers goroutines.
func timePhase(b *testing.B, run probeRun, devices, n, workers int) phase {
	b.Helper()
	ctx := context.Background()
	b.StopTimer()
	if failed := runWorkers(devices, 64, func(i int) error { return run.do(ctx, i) }); failed > 0 {
		b.Fatalf("warm-up: %d of %d probes failed", failed, devices)
	}
	b.StartTimer()
	cpu0 := cpuTime()
	start := time.Now()
	failed := runWorkers(n, workers, func(i int) error { return run.do(ctx, i) })
	p := phase{rate: float64(n) / time.Since(start).Seconds(), cpu: (cpuTime() - cpu0) / time.Duration(n)}
	if failed > 0 {
		b.Errorf("%d of %d probes failed", failed, n)
	}
	return p
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (p phase) report(b *testing.B, prefix string) {
	b.ReportMetric(p.rate, prefix+"probes/s")
	b.ReportMetric(float64(p.cpu.Nanoseconds())/1e3, prefix+"cpu-us/probe")
}

// BenchmarkProbe measures tag probes per second from one Transport to a
// fleet of FLEETVAULT_BENCH_DEVICES devices (1,000) in the same process,
// both sides sharing the CPUs, with FLEETVAULT_BENCH_WORKERS (64) callers.
func BenchmarkProbe(b *testing.B) {
	devices, workers := benchDevices(), benchWorkers()
	run := startTransportRun(b, devices)
	defer run.close()
	timePhase(b, run, devices, b.N, workers).report(b, "")
}

// BenchmarkCeiling is BenchmarkProbe's ceiling: the same probes over bare
// go-coap (startCeilingRun).
func BenchmarkCeiling(b *testing.B) {
	devices, workers := benchDevices(), benchWorkers()
	run := startCeilingRun(b, devices)
	defer run.close()
	timePhase(b, run, devices, b.N, workers).report(b, "")
}

// BenchmarkProbeRatio alternates the ceiling and the transport, three
// phases each of b.N/6 probes, each phase on a fresh fleet, and reports the
// median rate and CPU time per probe of each, and the ratios of a transport
// phase to the ceiling phase just before it: "ratio" compares rates (median,
// lowest, highest), "cpu-ratio" compares CPU per probe (ceiling's over the
// transport's, so above 1 means the transport is leaner than bare go-coap).
// Alternating keeps a noisy shared machine from favouring one side.
func BenchmarkProbeRatio(b *testing.B) {
	devices, workers := benchDevices(), benchWorkers()
	const rounds = 3
	n := max(b.N/(2*rounds), 1)
	var ceil, tr []phase
	var ratio, cpuRatio []float64
	for range rounds {
		b.StopTimer()
		c := startCeilingRun(b, devices)
		ceil = append(ceil, timePhase(b, c, devices, n, workers))
		b.StopTimer()
		c.close()
		runtime.GC()
		t := startTransportRun(b, devices)
		tr = append(tr, timePhase(b, t, devices, n, workers))
		b.StopTimer()
		t.close()
		runtime.GC()
		lc, lt := ceil[len(ceil)-1], tr[len(tr)-1]
		ratio = append(ratio, lt.rate/lc.rate)
		cpuRatio = append(cpuRatio, float64(lc.cpu)/float64(lt.cpu))
	}
	medianPhase(ceil).report(b, "ceiling-")
	medianPhase(tr).report(b, "")
	b.ReportMetric(median(ratio), "ratio")
	b.ReportMetric(slices.Min(ratio), "ratio-min")
	b.ReportMetric(slices.Max(ratio), "ratio-max")
	b.ReportMetric(median(cpuRatio), "cpu-ratio")
}

// BenchmarkGroupRestore measures what a group restore asks of the
// transport: for each device, a tag probe and then a write of its settings
// under a job (two round trips), FLEETVAULT_BENCH_WORKERS devices at a time.
// One op is one device restored; with -benchtime set to the number of
// devices, one op pass is one whole group, and group-s is its duration.
func BenchmarkGroupRestore(b *testing.B) {
	devices, workers := benchDevices(), benchWorkers()
	f := startFleet(b, devices)
	tr := newTestTransport(b, TransportOptions{Insecure: true})
	settings, err := agent.EncodeSettings(agent.Settings{"setpoint": uint64(19), "mode": "eco", "schedule": "06:30-22:00"})
	if err != nil {
		b.Fatal(err)
	}
	hash := agent.Hash(settings)
	ctx := context.Background()
	restore := func(i int) error {
		target := f.targets[i%devices]
		resp, err := tr.Do(ctx, target, &agent.Request{})
		if err != nil {
			return err
		}
		if resp.Err != nil || len(resp.Tag) == 0 {
			return fmt.Errorf("probe %s: %+v", target, resp)
		}
		write := identifiers.Settings("coap", target.Address, target.Port, agent.LocWrite)
		req := &agent.Request{Job: "restore-" + strconv.Itoa(i/devices), Settings: settings, Hash: hash}
		if resp, err = tr.Do(ctx, write, req); err != nil {
			return err
		}
		if resp.Err != nil || !bytes.Equal(resp.Hash, hash) {
			return fmt.Errorf("write %s: %+v", write, resp)
		}
		return nil
	}
	// Warm up with a probe of every device, as a restore's plan step would
	// not, but so that the figure is the steady state the ceiling also is.
	if failed := runWorkers(devices, 64, func(i int) error { _, err := tr.Do(ctx, f.targets[i], &agent.Request{}); return err }); failed > 0 {
		b.Fatalf("warm-up: %d probes failed", failed)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	failed := runWorkers(b.N, workers, restore)
	elapsed := time.Since(start)
	if failed > 0 {
		b.Errorf("%d of %d restores failed", failed, b.N)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "devices/s")
	b.ReportMetric(float64(devices)/rate, "group-s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/device")
}

func medianPhase(ps []phase) phase {
	var rates, cpus []float64
	for _, p := range ps {
		rates = append(rates, p.rate)
		cpus = append(cpus, float64(p.cpu))
	}
	return phase{rate: median(rates), cpu: time.Duration(median(cpus))}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestMemoryPerDevice serves many devices in one process, probes each once,
// and reports the heap and stacks they hold. It fails if a device costs more
// than 60 KiB, the budget that puts 100,000 devices within 6 GiB.
func TestMemoryPerDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts thousands of devices; skipped under -short")
	}
	n := benchEnv("FLEETVAULT_MEM_DEVICES", 5000)
	before := inUse()
	f := startFleet(t, n)
	idle := inUse()
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	ok, failed := probe(context.Background(), tr, f.targets, 128, 1)
	if failed > 0 {
		t.Fatalf("%d of %d probes failed", failed, ok+failed)
	}
	active := inUse()
	perIdle := float64(idle-before) / float64(n)
	perActive := float64(active-before) / float64(n)
	t.Logf("%d devices: %.1f KiB each idle, %.1f KiB each after a probe (device and transport state, heap and stacks); %d goroutines",
		n, perIdle/1024, perActive/1024, runtime.NumGoroutine())
	if perActive > 60<<10 {
		t.Errorf("a device costs %.1f KiB, over the 60 KiB budget", perActive/1024)
	}
}

func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
