package mqtt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/identifiers"
)

// shardedEnv is two brokers: the default one and shard s2, each with its
// own devices, and a Shards over transports to both.
type shardedEnv struct {
	def, s2 *env
	shards  *Shards
	stopS2  func()
}

func newShardedEnv(t *testing.T) *shardedEnv {
	t.Helper()
	pw := func(d string) string { return "pw-" + d }
	creds := brokertest.Credentials(t, map[string]string{"d1": pw("d1"), "d2": pw("d2"), "d3": pw("d3")}, map[string]string{"fleetvault": "server-secret"})
	b1 := brokertest.Start(t, creds)
	b2 := brokertest.Start(t, creds)
	e := &shardedEnv{
		def: newEnv(t, brokertest.URL(b1), "fleetvault", "server-secret", pw),
		s2:  newEnvOptions(t, brokertest.URL(b2), TransportOptions{BrokerURL: brokertest.URL(b2), Username: "fleetvault", Password: "server-secret", Background: true}, pw),
	}
	e.stopS2 = func() { b2.Close() }
	waitFor(t, "the s2 transport to connect", e.s2.tr.Connected)
	var err error
	e.shards, err = NewShards(Shard{Name: identifiers.DefaultBroker, URL: e.def.url, Transport: e.def.tr}, Shard{Name: "s2", URL: e.s2.url, Transport: e.s2.tr})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// onShard returns the identifier of device id on shard (none: the default).
func onShard(id, shard string) identifiers.ID {
	target := identifiers.ReadTag("mqtt", id, 0)
	if shard != "" {
		target.Params = append(target.Params, identifiers.ParamBroker+":"+shard)
	}
	return target
}

func TestShardsRoute(t *testing.T) {
	e := newShardedEnv(t)
	e.def.AddDevice(t, "d1", agenttest.NewMemDevice(nil, nil))
	e.s2.AddDevice(t, "d2", agenttest.NewMemDevice(nil, nil))
	for _, tc := range []struct {
		name    string
		target  identifiers.ID
		wantErr error  // nil: answered
		phrase  string // in the error
	}{
		{"default broker", onShard("d1", ""), nil, ""},
		{"shard s2", onShard("d2", "s2"), nil, ""},
		{"device of s2 addressed on the default broker", onShard("d2", ""), agent.ErrTimeout, "d2"},
		{"device of the default broker addressed on s2", onShard("d1", "s2"), agent.ErrTimeout, "broker shard s2"},
		{"unknown shard", onShard("d1", "s9"), ErrUnknownShard, `broker shard "s9"`},
		{"malformed broker param", onShard("d1", "a.b"), identifiers.ErrBrokerParam, "broker:a.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := contextTimeout(t, 500*time.Millisecond)
			defer cancel()
			resp, err := e.shards.Do(ctx, tc.target, &agent.Request{})
			if tc.wantErr == nil {
				if err != nil || resp.Err != nil || resp.Device != tc.target.Address {
					t.Fatalf("Do(%s) = %+v, %v", tc.target, resp, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("Do(%s) error %v, want %v containing %q", tc.target, err, tc.wantErr, tc.phrase)
			}
		})
	}
	if st := e.shards.Stats(); st.Answered != e.def.tr.Stats().Answered+e.s2.tr.Stats().Answered || st.Answered < 2 {
		t.Errorf("Stats().Answered = %d, not the sum of the shards'", st.Answered)
	}
}

// TestShardDown: when a shard's broker goes away, its devices fail at once
// with a reason naming the shard; the other broker's devices are unaffected.
func TestShardDown(t *testing.T) {
	e := newShardedEnv(t)
	e.def.AddDevice(t, "d1", agenttest.NewMemDevice(nil, nil))
	e.s2.AddDevice(t, "d2", agenttest.NewMemDevice(nil, nil))
	e.stopS2()
	waitFor(t, "the s2 transport to notice", func() bool { return !e.s2.tr.Connected() })
	ctx, cancel := contextTimeout(t, 5*time.Second)
	defer cancel()
	_, err := e.shards.Do(ctx, onShard("d2", "s2"), &agent.Request{})
	if !errors.Is(err, agent.ErrUnreachable) || !strings.Contains(err.Error(), "broker shard s2 ("+e.s2.url+")") {
		t.Fatalf("device on the stopped shard: %v, want ErrUnreachable naming broker shard s2 and its URL", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call waited for its deadline instead of failing at once")
	}
	if resp, err := e.shards.Do(ctx, onShard("d1", ""), &agent.Request{}); err != nil || resp.Err != nil {
		t.Fatalf("device on the default broker: %+v, %v", resp, err)
	}
}

// TestShardBackgroundConnect: a shard that is not there at start does not
// stop NewTransport; its calls fail at once until it is.
func TestShardBackgroundConnect(t *testing.T) {
	tr, err := NewTransport(t.Context(), TransportOptions{BrokerURL: "mqtt://127.0.0.1:1", Background: true})
	if err != nil {
		t.Fatalf("NewTransport with Background: %v", err)
	}
	defer tr.Close()
	_, err = tr.Do(t.Context(), onShard("d1", ""), &agent.Request{})
	if !errors.Is(err, agent.ErrUnreachable) || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("Do = %v, want ErrUnreachable: not connected", err)
	}
}

func TestNewShardsRefuses(t *testing.T) {
	tr := &Transport{}
	for _, tc := range []struct {
		name   string
		shards []Shard
		phrase string
	}{
		{"bad name", []Shard{{Name: "a/b", Transport: tr}}, "name"},
		{"twice", []Shard{{Name: "s1", Transport: tr}, {Name: "s1", Transport: tr}}, "twice"},
		{"no transport", []Shard{{Name: "s1"}}, "no transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewShards(tc.shards...); err == nil || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("NewShards = %v, want an error containing %q", err, tc.phrase)
			}
		})
	}
}

func contextTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
