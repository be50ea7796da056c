package server

import (
	"context"
	"fmt"
	"github.com/fleetvault/fleetvault/httpguard"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// startTestServer creates an installation and starts a server on free ports.
func startTestServer(t *testing.T) *Server {
	t.Helper()
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API tests send many wrong tokens from one address on purpose: a
	// large allowance keeps the throttle (tested in package httpguard) out
	// of their way.
	s, err := Start(context.Background(), Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0",
		HTTPThrottle: httpguard.ThrottleOptions{Failures: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// provision adds devices with passwords to the resource DB and a group.
func provision(t *testing.T, s *Server, group string, ids []string) map[string]string {
	t.Helper()
	pw := map[string]string{}
	var devs []catalog.Device
	for _, id := range ids {
		pw[id] = broker.NewSecret()
		h, err := broker.HashPassword(pw[id])
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, catalog.Device{ID: id, Identifier: "mqtt://" + id, PasswordHash: h, Role: "device"})
	}
	if err := s.Catalog.PutDevices(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	if err := s.Catalog.CreateGroup(group, catalog.Group{Kind: catalog.GroupDevices}); err != nil {
		t.Fatal(err)
	}
	if err := s.Catalog.AddMembers(group, ids); err != nil {
		t.Fatal(err)
	}
	return pw
}

func serveDevice(t *testing.T, s *Server, id, password string, dev agent.Device) {
	t.Helper()
	serveDeviceAt(t, s.BrokerURL(), id, password, dev)
}

// serveDeviceAt serves dev as device id at the broker url until the test ends.
func serveDeviceAt(t *testing.T, url, id, password string, dev agent.Device) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- mqtt.Serve(ctx, agent.NewHandler(id, dev, agent.HandlerOptions{}), mqtt.DeviceOptions{BrokerURL: url, Password: password,
			OnConnect: func() {
				select {
				case up <- struct{}{}:
				default:
				}
			}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("device %s: %v", id, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("device %s did not connect", id)
	}
}

func tag(zone string) tagmatch.Tag {
	return tagmatch.Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "product", Value: "climate control"}, {Key: "model", Value: "xyz"}, {Key: "zone", Value: zone}}
}

// TestBackupAndRestoreThroughEmbeddedBroker runs a whole group backup and
// group restore through the embedded broker with authenticated paho devices.
func TestBackupAndRestoreThroughEmbeddedBroker(t *testing.T) {
	s := startTestServer(t)
	refs := provision(t, s, "model-house", []string{"ref-north", "ref-south"})
	var homes []string
	for i := 0; i < 6; i++ {
		homes = append(homes, fmt.Sprintf("home%d-climate", i))
	}
	pws := provision(t, s, "homes", homes)
	north := agent.Settings{"setpoint": 21.5}
	south := agent.Settings{"setpoint": 24.5}
	serveDevice(t, s, "ref-north", refs["ref-north"], agenttest.NewMemDevice(tag("North"), north))
	serveDevice(t, s, "ref-south", refs["ref-south"], agenttest.NewMemDevice(tag("South"), south))
	devs := map[string]*agenttest.MemDevice{}
	for i, id := range homes {
		devs[id] = agenttest.NewMemDevice(tag([]string{"North", "South"}[i%2]), agent.Settings{"setpoint": 20})
		serveDevice(t, s, id, pws[id], devs[id])
	}

	ctx := context.Background()
	b, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "model-house", Target: "reference-iot"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Wait(ctx); p.Counts[grouprestore.BackedUp] != 2 {
		t.Fatalf("backup: %+v %v", p, b.Devices())
	}
	r, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindRestore, Source: "reference-iot", Target: "homes"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Wait(ctx); p.Counts[grouprestore.Restored] != 6 {
		t.Fatalf("restore: %+v %v", p, r.Devices())
	}
	for i, id := range homes {
		want, _ := agent.EncodeSettings([]agent.Settings{north, south}[i%2])
		got, _ := devs[id].Settings(ctx)
		gb, _ := agent.EncodeSettings(got)
		if string(gb) != string(want) {
			t.Errorf("%s holds %v", id, got)
		}
	}
}
