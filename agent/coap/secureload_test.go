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
	keys := map[string][]byte{}
	devs := make([]*testDevice, n)
	for i := range devs {
		devs[i] = startSecureDevice(t, testKey)
		keys[devs[i].id()] = testKey
	}
	tr := newTestTransport(t, TransportOptions{Keys: keysOf(keys)})
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
