package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// ErrUnknownShard marks a request whose identifier names a broker shard the
// server has no connection to (docs/spec/identifiers.md section 9.1).
var ErrUnknownShard = errors.New("no such broker shard")

// Shard is one broker of a sharded fleet: its name (what broker:NAME params
// refer to; identifiers.DefaultBroker for the default broker), where it is
// (for messages), and the server's transport to it.
type Shard struct {
	Name      string
	URL       string
	Transport *Transport
}

// Shards routes each request to the broker shard its identifier names in a
// broker:NAME param, and requests without one to the default broker. Each
// shard keeps its own connection, response subscription, in-flight cap and
// presence; a shard that is down fails only the requests to its devices, with
// an error naming the shard. It implements agent.Transport and
// agent.PresenceNotifier.
type Shards struct {
	byName map[string]Shard
}

var (
	_ agent.Transport        = (*Shards)(nil)
	_ agent.PresenceNotifier = (*Shards)(nil)
)

// NewShards routes over shards, whose names must be distinct and valid
// (identifiers.ValidBrokerName, or "" for the default broker). The Shards
// owns the transports: Close closes them all.
func NewShards(shards ...Shard) (*Shards, error) {
	s := &Shards{byName: make(map[string]Shard, len(shards))}
	for _, sh := range shards {
		if sh.Name != identifiers.DefaultBroker && !identifiers.ValidBrokerName(sh.Name) {
			return nil, fmt.Errorf("mqtt: broker shard name %q: 1 to 63 letters, digits, '-' or '_'", sh.Name)
		}
		if _, dup := s.byName[sh.Name]; dup {
			return nil, fmt.Errorf("mqtt: broker shard %q is configured twice", sh.Name)
		}
		if sh.Transport == nil {
			return nil, fmt.Errorf("mqtt: broker shard %q has no transport", sh.Name)
		}
		s.byName[sh.Name] = sh
	}
	return s, nil
}

// Do sends req through the connection to the shard target names. See
// agent.Transport. Errors of a named shard say which one.
func (s *Shards) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	name, err := target.Broker()
	if err != nil {
		return nil, fmt.Errorf("mqtt: identifier %s: %w", target, err)
	}
	sh, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("mqtt: identifier %s: broker shard %q: %w (configured: %s)", target, name, ErrUnknownShard, s.names())
	}
	resp, err := sh.Transport.Do(ctx, target, req)
	if err != nil && name != identifiers.DefaultBroker {
		return resp, fmt.Errorf("broker shard %s (%s): %w", name, sh.URL, err)
	}
	return resp, err
}

// Shard returns the shard named name.
func (s *Shards) Shard(name string) (Shard, bool) {
	sh, ok := s.byName[name]
	return sh, ok
}

// names lists the configured shards for an error message.
func (s *Shards) names() string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		if n == identifiers.DefaultBroker {
			n = "the default broker"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// OnOnline registers fn with every shard: a device announces itself on its
// own shard.
func (s *Shards) OnOnline(fn func(device string)) {
	for _, sh := range s.byName {
		sh.Transport.OnOnline(fn)
	}
}

// Stats adds up the counters of all shards.
func (s *Shards) Stats() Stats {
	var sum Stats
	sum.Dropped = map[string]uint64{}
	for _, sh := range s.byName {
		st := sh.Transport.Stats()
		sum.Sent += st.Sent
		sum.Received += st.Received
		sum.Answered += st.Answered
		sum.Presence += st.Presence
		for k, v := range st.Dropped {
			sum.Dropped[k] += v
		}
	}
	return sum
}

// Close closes every shard's transport.
func (s *Shards) Close() error {
	var errs []error
	for name, sh := range s.byName {
		if err := sh.Transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("broker shard %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
