package fleettests

import (
	"context"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/server"
)

// The server's identity at an external broker.
const (
	serverUser     = "fleetvault-server"
	serverPassword = "server-secret-for-tests"
)

// externalWorld is a world whose server and fleet meet at an external broker
// that the test runs: an installation with the fleet provisioned, the server
// connected to brokerURL as serverUser, the fleet online and the references
// backed up. start gets the devices (with their passwords) and returns the
// broker's URL.
func externalWorld(t *testing.T, ctx context.Context, spec *devicesim.Spec, start func(devs []devicesim.DeviceInfo) string) *scenario.World {
	t.Helper()
	// The broker's address is not known until its users are: make the
	// fleet first (no network), point it at the broker once it runs.
	fleet, err := devicesim.New(spec, devicesim.Options{BrokerURL: "mqtt://127.0.0.1:1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	devs := fleet.Devices()
	url := start(devs)
	if err := fleet.SetBrokerURL(url); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mbr := provisionInstallation(t, ctx, dir, devs)
	s, err := server.Start(ctx, server.Options{MBR: mbr, BrokerURL: url, BrokerUser: serverUser, BrokerPassword: serverPassword,
		CoAPListen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatalf("start the server on the broker at %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	w := &scenario.World{Server: s, Fleet: fleet, Devices: devs, Dir: dir, BackupGroup: scenario.DefaultBackupGroup}
	if _, err := w.BackupReferences(ctx); err != nil {
		t.Fatalf("back up the reference groups: %v", err)
	}
	return w
}

// devicePasswords maps each MQTT device to its password.
func devicePasswords(devs []devicesim.DeviceInfo) map[string]string {
	out := make(map[string]string, len(devs))
	for _, d := range devs {
		if d.Transport == devicesim.TransportMQTT {
			out[d.ID] = d.Password
		}
	}
	return out
}

// TestMosquitto runs the builder's backup and group restore through a real
// Mosquitto configured with the shipped password file and ACL: the server
// and every device connect to it with their own credentials.
func TestMosquitto(t *testing.T) {
	spec := loadFleet(t, "../examples/fleets/model-house.yaml")
	scenario.ScaleTargets(spec, sites(40, 200))
	ctx := testContext(t, 3*time.Minute)
	w := externalWorld(t, ctx, spec, func(devs []devicesim.DeviceInfo) string {
		users := devicePasswords(devs)
		users[serverUser] = serverPassword
		return brokertest.StartMosquitto(t, users, []string{serverUser})
	})
	if w.Server.Broker != nil {
		t.Fatal("the server runs its embedded broker, not Mosquitto")
	}
	expect := w.Expect("new-homes")
	// Late joiners (3-15 s after the fleet starts) are waited for.
	j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "new-homes", grouprestore.Rollout{Timeout: 2 * time.Second, Retries: 1, OfflineTTL: 20 * time.Second}))
	if p.State != grouprestore.JobDone {
		t.Errorf("job ended %s (%s)", p.State, p.Reason)
	}
	checkStates(t, p, j.Devices(), wantFromOracle(w, expect))
	checkTruth(t, w, j, win, expect)
	checkReferencesUntouched(t, w)
}

// TestBrokerRestartMidJob stops the MQTT broker in the middle of a restore
// and starts it again on the same port: the server (connected as to an
// external broker) and every device reconnect, the job retries what was in
// flight and ends done with every device restored and nothing wrong written.
// The embedded broker cannot restart under a running server (the server
// talks to it in process), so the broker here is a second embedded broker
// that the server reaches over TCP, as it would Mosquitto or EMQX.
func TestBrokerRestartMidJob(t *testing.T) {
	spec := loadFleet(t, "testdata/crash.yaml")
	ctx := testContext(t, 3*time.Minute)
	addr := freeAddr(t)
	var creds broker.StaticCredentials
	startBroker := func() *broker.Broker {
		b, err := broker.New(broker.Options{TCPAddr: addr, Credentials: creds, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatalf("start the broker on %s: %v", addr, err)
		}
		return b
	}
	var b *broker.Broker
	w := externalWorld(t, ctx, spec, func(devs []devicesim.DeviceInfo) string {
		creds = brokertest.Credentials(t, devicePasswords(devs), map[string]string{serverUser: serverPassword})
		b = startBroker()
		return "mqtt://" + addr
	})
	t.Cleanup(func() { b.Close() })
	expect := w.Expect("homes")

	win := window{from: time.Now()}
	j, err := w.Server.Engine.Start(ctx, restoreSpec(w, "homes",
		grouprestore.Rollout{Rate: 30, Concurrency: 16, Timeout: time.Second, Retries: 3, OfflineTTL: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, time.Minute, "some devices to be restored", func() bool { return j.Progress().Counts[grouprestore.Restored] >= 20 })
	if err := b.Close(); err != nil {
		t.Fatalf("stop the broker: %v", err)
	}
	eventually(t, ctx, time.Minute, "the devices to notice the broker is gone", func() bool { return w.Fleet.Stats().Online == 0 })
	stopped := j.Progress()
	b = startBroker()
	p, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job did not end after the broker came back: %v (%v)", err, p.Counts)
	}
	win.to = time.Now()
	t.Logf("broker stopped at %v; job %s ended %s with %v", stopped.Counts, j.ID(), p.State, p.Counts)
	if stopped.Done >= stopped.Total {
		t.Fatalf("the job had ended before the broker stopped; slow it down")
	}
	if p.State != grouprestore.JobDone {
		t.Errorf("job ended %s (%s)", p.State, p.Reason)
	}
	outs := j.Devices()
	checkOneOutcomeEach(t, outs, expect)
	want := map[string]grouprestore.State{}
	for id := range expect {
		want[id] = grouprestore.Restored
	}
	checkStates(t, p, outs, want)
	checkTruth(t, w, j, win, expect)
	checkReferencesUntouched(t, w)
	retried := 0
	for _, o := range outs {
		if o.Attempts > 2 {
			retried++
		}
	}
	t.Logf("%d devices needed retries", retried)
}
