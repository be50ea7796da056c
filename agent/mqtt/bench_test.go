package mqtt

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/identifiers"
)

var (
	benchDevices  = flag.Int("bench.devices", 1000, "paho device clients in BenchmarkProbe")
	benchQoS0     = flag.Bool("bench.qos0", false, "QoS 0 instead of 1 in BenchmarkProbe")
	benchOpen     = flag.Bool("bench.open", false, "use a bare mochi broker without auth in BenchmarkProbe")
	benchInFlight = flag.Int("bench.inflight", DefaultMaxInFlight, "concurrent probes (and the transport's MaxInFlight) in BenchmarkProbe*")
)

// BenchmarkProbe measures READ:SETTINGS?TAG round trips per second through
// one server Transport and the embedded broker (auth and ACL on), to
// -bench.devices devices each served by Serve (a paho client apiece).
//
//	go test -run '^$' -bench Probe -benchtime 20000x ./agent/mqtt -bench.devices 1000
func BenchmarkProbe(b *testing.B) {
	n := *benchDevices
	creds := newFleetCreds(b)
	var url string
	if *benchOpen {
		url, _ = startOpenBroker(b)
	} else {
		url = brokertest.URL(brokertest.Start(b, creds))
	}
	tr, err := NewTransport(b.Context(), TransportOptions{BrokerURL: url, Username: "fleetvault", Password: "server-secret", AtMostOnce: *benchQoS0, MaxInFlight: *benchInFlight})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	// Count connections, not presence announcements: a thousand devices
	// connecting at once overflow the server client's queue at the broker,
	// which drops some announcements (they are best effort).
	var online atomic.Int64

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	targets := make([]identifiers.ID, n)
	for i := range n {
		id := fmt.Sprintf("bench%05d-climate", i)
		targets[i] = identifiers.ReadTag("mqtt", id, 0)
		h := agent.NewHandler(id, agenttest.NewMemDevice(agenttest.Tag(i), agent.Settings{"setpoint": 20}), agent.HandlerOptions{})
		opts := DeviceOptions{BrokerURL: url, Password: creds.password(id), AtMostOnce: *benchQoS0, OnConnect: func() { online.Add(1) }}
		go func() {
			if err := Serve(ctx, h, opts); err != nil {
				b.Error(err)
			}
		}()
	}
	waitFor(b, fmt.Sprintf("%d devices online", n), func() bool { return online.Load() >= int64(n) })

	runProbes(b, tr, targets)
}

// runProbes reads the tags of targets round robin, -bench.inflight at a time.
func runProbes(b *testing.B, tr *Transport, targets []identifiers.ID) {
	ctx := context.Background()
	n := uint64(len(targets))
	b.ReportAllocs()
	b.SetParallelism(max(1, *benchInFlight/max(1, runtimeProcs())))
	b.ResetTimer()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % n
			resp, err := tr.Do(ctx, targets[i], &agent.Request{})
			if err != nil {
				b.Error(err)
				return
			}
			if resp.Err != nil || resp.Device != targets[i].Address {
				b.Errorf("probe of %s: answered by %s: %v", targets[i].Address, resp.Device, resp.Err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "probes/s")
	st := tr.Stats()
	if d := st.Dropped; d[DropUnknownID]+d[DropMalformed]+d[DropDevice]+d[DropWrongDevice]+d[DropTopic] > 0 {
		b.Errorf("dropped answers: %v", d)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkProbeFleet is BenchmarkProbe with the devices answered by one
// responder client subscribed to every request topic (so the open broker,
// no ACL): it measures the server transport and the broker at fleet sizes
// that thousands of paho clients could not reach on a small machine.
//
//	go test -run '^$' -bench ProbeFleet -benchtime 50000x ./agent/mqtt -bench.devices 10000
func BenchmarkProbeFleet(b *testing.B) {
	n := *benchDevices
	url, _ := startOpenBroker(b)
	handlers := make(map[string]*agent.Handler, n)
	targets := make([]identifiers.ID, n)
	for i := range n {
		id := fmt.Sprintf("fleet%05d-climate", i)
		targets[i] = identifiers.ReadTag("mqtt", id, 0)
		handlers[id] = agent.NewHandler(id, agenttest.NewMemDevice(agenttest.Tag(i), agent.Settings{"setpoint": 20}), agent.HandlerOptions{})
	}
	qos := byte(1)
	if *benchQoS0 {
		qos = 0
	}
	responder := paho.NewClient(clientOptions(url, "responder", "responder", "", nil, 0))
	if err := connect(b.Context(), responder, url); err != nil {
		b.Fatal(err)
	}
	defer responder.Disconnect(0)
	ctx := context.Background()
	err := subscribe(responder, agent.RequestWildcard, qos, func(c paho.Client, m paho.Message) {
		dev, _ := agent.ParseRequestTopic(m.Topic())
		if h := handlers[dev]; h != nil {
			if out, ok := h.HandleBytes(ctx, m.Payload()); ok {
				c.Publish(agent.ResponseTopic(dev), qos, false, out)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransport(b.Context(), TransportOptions{BrokerURL: url, Username: "fleetvault", AtMostOnce: *benchQoS0, MaxInFlight: *benchInFlight})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runProbes(b, tr, targets)
}
