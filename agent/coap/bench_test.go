package coap

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
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
	var next, okN, failN atomic.Int64
	total := int64(len(targets) * rounds)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				resp, err := tr.Do(ctx, targets[i%int64(len(targets))], &agent.Request{})
				if err != nil || resp.Err != nil {
					failN.Add(1)
					continue
				}
				okN.Add(1)
			}
		})
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}

// BenchmarkProbe measures tag probes per second from one Transport to a
// fleet of 1,000 devices in the same process (both sides share the CPUs).
func BenchmarkProbe(b *testing.B) {
	devices := 1000
	if s := os.Getenv("FLEETVAULT_BENCH_DEVICES"); s != "" {
		devices, _ = strconv.Atoi(s)
	}
	workers := 64
	if s := os.Getenv("FLEETVAULT_BENCH_WORKERS"); s != "" {
		workers, _ = strconv.Atoi(s)
	}
	f := startFleet(b, devices)
	tr := newTestTransport(b, TransportOptions{})
	ctx := context.Background()
	probe(ctx, tr, f.targets, 64, 1) // warm: exchange state for every peer
	b.ResetTimer()
	start := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				resp, err := tr.Do(ctx, f.targets[i%int64(devices)], &agent.Request{})
				if err != nil || resp.Err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "probes/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d probes failed", n, b.N)
	}
}

// TestMemoryPerDevice serves many devices in one process, probes each once,
// and reports the heap and stacks they hold. It fails if a device costs more
// than 60 KiB, the budget that puts 100,000 devices within 6 GiB.
func TestMemoryPerDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts thousands of devices; skipped under -short")
	}
	n := 5000
	if s := os.Getenv("FLEETVAULT_MEM_DEVICES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	before := inUse()
	f := startFleet(t, n)
	idle := inUse()
	tr := newTestTransport(t, TransportOptions{})
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
