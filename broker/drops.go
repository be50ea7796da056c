package broker

import (
	"errors"
	"hash/maphash"
	"sync"
)

// ErrPendingWritesFull is returned, wrapped, by Publish when a subscriber's
// queue of pending writes (MaxPendingWrites) was full and mochi dropped the
// message for it: a device that does not read, or reads too slowly. The
// message reached every other subscriber; sending it again later is the
// caller's choice.
var ErrPendingWritesFull = errors.New("the subscriber's pending writes are full (a slow or stuck client); the message was dropped for it")

// inlineDrops tells Publish whether mochi dropped the message it was
// publishing. mochi only logs a publish it could not queue for a client
// (and calls OnPublishDropped on the publishing goroutine); without this the
// server would wait for an answer to a request that was never sent.
//
// Publishes in progress are registered by topic. A drop for a registered
// topic marks every publish in progress to that topic: two concurrent
// publishes to one device's topic, one dropped, both report the drop (the
// caller may then send the other twice, never lose it).
type inlineDrops struct {
	seed   maphash.Seed
	shards [32]dropShard
}

type dropShard struct {
	mu      sync.Mutex
	pending map[string]*dropMark
}

// dropMark is the publishes in progress to one topic.
type dropMark struct {
	publishes int  // in progress
	dropped   bool // mochi dropped a message to this topic meanwhile
}

func newInlineDrops() *inlineDrops {
	d := &inlineDrops{seed: maphash.MakeSeed()}
	for i := range d.shards {
		d.shards[i].pending = make(map[string]*dropMark)
	}
	return d
}

func (d *inlineDrops) shard(topic string) *dropShard {
	return &d.shards[maphash.String(d.seed, topic)%uint64(len(d.shards))]
}

// begin registers a publish to topic; end must follow.
func (d *inlineDrops) begin(topic string) *dropMark {
	s := d.shard(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.pending[topic]
	if m == nil {
		m = &dropMark{}
		s.pending[topic] = m
	}
	m.publishes++
	return m
}

// end unregisters a publish and reports whether a message to its topic was
// dropped while it was in progress.
func (d *inlineDrops) end(topic string, m *dropMark) (dropped bool) {
	s := d.shard(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped = m.dropped
	if m.publishes--; m.publishes == 0 {
		delete(s.pending, topic)
	}
	return dropped
}

// dropped marks the publishes in progress to topic, if any.
func (d *inlineDrops) dropped(topic string) {
	s := d.shard(topic)
	s.mu.Lock()
	if m := s.pending[topic]; m != nil {
		m.dropped = true
	}
	s.mu.Unlock()
}
