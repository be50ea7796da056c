package coap

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
)

// TestSecureManyFirstProbes: first probes to many devices at once, each a
// handshake, all get through.
func TestSecureManyFirstProbes(t *testing.T) {
	const n = 50
	devs, tr := startSecureFleet(t, n)
	var failed atomic.Int32
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() {
			ctx := agent.WithDevice(ctxTimeout(t, 30*time.Second), d.id())
			resp, err := tr.Do(ctx, d.secureIdent(agent.LocTag), &agent.Request{})
			if err != nil || resp.Err != nil {
				failed.Add(1)
				t.Logf("%s: %v", d.id(), err)
			}
		})
	}
	wg.Wait()
	t.Logf("stats %+v", tr.Stats())
	if failed.Load() > 0 {
		t.Fatalf("%d of %d first probes failed", failed.Load(), n)
	}
}

// BenchmarkSecureProbe measures tag probes over DTLS sessions already open,
// to 100 devices in this process (compare BenchmarkProbe, plain CoAP).
func BenchmarkSecureProbe(b *testing.B) {
	const n = 100
	devs, tr := startSecureFleet(b, n)
	probe := func(d *testDevice) error {
		ctx := agent.WithDevice(ctxTimeout(b, 10*time.Second), d.id())
		resp, err := tr.Do(ctx, d.secureIdent(agent.LocTag), &agent.Request{})
		if err == nil && resp.Err != nil {
			err = resp.Err
		}
		return err
	}
	for _, d := range devs {
		if err := probe(d); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Uint64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := probe(devs[next.Add(1)%n]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// startSecureFleet serves n devices over DTLS and returns them with a
// transport that holds their keys.
func startSecureFleet(t testing.TB, n int) ([]*testDevice, *Transport) {
	t.Helper()
	keys := map[string][]byte{}
	devs := make([]*testDevice, n)
	for i := range devs {
		devs[i] = startSecureDevice(t, testKey)
		keys[devs[i].id()] = testKey
	}
	return devs, newTestTransport(t, TransportOptions{Keys: keysOf(keys)})
}
