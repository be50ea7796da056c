package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// TestShards: devices on the default broker and on a broker shard are backed
// up through their own brokers, the shard authenticating them from the
// credentials file the server exports; a device on a shard that is down
// fails with a reason naming the shard, and only it.
func TestShards(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	serverPW := broker.NewSecret()
	serverHash, err := broker.HashPassword(serverPW)
	if err != nil {
		t.Fatal(err)
	}
	// Shard s2 starts knowing only the server; s3 is down (nothing listens on port 1).
	credsFile := ShardCredentialsFile(dir, "s2")
	if _, err := broker.WriteCredentialsFile(credsFile, []broker.Identity{{Name: "fleetvault-srv", Role: broker.RoleServer, PasswordHash: serverHash}}); err != nil {
		t.Fatal(err)
	}
	creds, err := broker.OpenCredentialsFile(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	s2 := brokertest.Start(t, creds)
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", Shards: []MQTTShard{
		{Name: "s2", URL: brokertest.URL(s2), User: "fleetvault-srv", Password: serverPW},
		{Name: "s3", URL: "mqtt://127.0.0.1:1", User: "fleetvault-srv", Password: serverPW},
	}})
	if err != nil {
		t.Fatalf("Start with a shard that is down: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	ids := []string{"home0-climate", "home1-climate", "home2-climate"}
	pws := provision(t, s, "homes", ids)
	for id, shard := range map[string]string{"home1-climate": "s2", "home2-climate": "s3"} {
		d, err := s.Catalog.Device(id)
		if err != nil {
			t.Fatal(err)
		}
		d.Identifier = "mqtt://" + id + "?READ:SETTINGS,broker:" + shard + "?TAG"
		if err := s.Catalog.PutDevices(ctx, []catalog.Device{d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Catalog.PutDevices(ctx, []catalog.Device{{ID: "fleetvault-srv", Role: "server", PasswordHash: serverHash}}); err != nil {
		t.Fatal(err)
	}
	changed, err := ExportShardCredentials(s.Catalog, dir, []string{"s2", "s3"})
	if err != nil || len(changed) != 2 {
		t.Fatalf("ExportShardCredentials = %v, %v; want both files written", changed, err)
	}
	if n, err := creds.Reload(); err != nil || n != 2 {
		t.Fatalf("s2's credentials after the export: %d identities, %v; want home1-climate and the server", n, err)
	}
	serveDeviceAt(t, s.BrokerURL(), "home0-climate", pws["home0-climate"], agenttest.NewMemDevice(tag("North"), agent.Settings{"setpoint": 20}))
	serveDeviceAt(t, brokertest.URL(s2), "home1-climate", pws["home1-climate"], agenttest.NewMemDevice(tag("North"), agent.Settings{"setpoint": 20}))
	sh, _ := s.Shards.Shard("s2")
	deadline := time.Now().Add(20 * time.Second)
	for !sh.Transport.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not connect to shard s2")
		}
		time.Sleep(10 * time.Millisecond)
	}

	j, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "homes-backup",
		Rollout: grouprestore.Rollout{Timeout: 5 * time.Second, Retries: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range j.Devices() {
		t.Run(o.Device, func(t *testing.T) {
			switch o.Device {
			case "home2-climate":
				if o.State == grouprestore.BackedUp || !strings.Contains(o.Reason, "broker shard s3 (mqtt://127.0.0.1:1)") {
					t.Fatalf("device on the shard that is down: %s %q, want a failure naming broker shard s3", o.State, o.Reason)
				}
			default:
				if o.State != grouprestore.BackedUp {
					t.Fatalf("%s: %s %q", o.Device, o.State, o.Reason)
				}
			}
		})
	}
}
