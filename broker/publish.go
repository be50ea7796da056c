package broker

import (
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
)

// ErrPendingWritesFull is returned, wrapped, by Publish when a subscriber's
// queue of pending writes (MaxPendingWrites) was full and mochi dropped the
// message for it: a device that does not read, or reads too slowly. The
// message reached every other subscriber; sending it again later is the
// caller's choice.
var ErrPendingWritesFull = errors.New("the subscriber's pending writes are full (a slow or stuck client); the message was dropped for it")

// Publish sends payload to topic from inside the process, through mochi's
// inline client: no network, no ACL (the embedding server is trusted). QoS 1
// is delivered to QoS 1 subscribers. When a subscriber's pending writes are
// full (MaxPendingWrites: it does not read, or too slowly), the message is
// dropped for that subscriber only and Publish returns an error wrapping
// ErrPendingWritesFull; other subscribers and other topics are not held up.
//
// The delivery runs on one of a few publisher goroutines when one is free,
// else on the caller's: mochi's delivery path passes its 800-byte packets by
// value through a dozen calls, about 20 KB of stack. Run by the thousands of
// requests a group restore has in flight, every caller's stack would grow to
// 32 KB (and be copied to get there); the publishers keep that depth on a few
// stacks (docs/BENCHMARKS.md, "Server memory"). mochi never blocks a
// publish (a full client queue drops), so a few suffice; and since Publish
// never waits for a publisher, an inline subscriber's fn may itself publish.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	if qos > 1 {
		return fmt.Errorf("broker: publish to %s: qos %d not supported (0 or 1)", truncate(topic), qos)
	}
	b.pubOnce.Do(b.startPublishers)
	done := donePool.Get().(chan error)
	defer donePool.Put(done)
	select {
	case b.pubs <- inlinePublish{topic, payload, qos, done}:
		return <-done // a publisher always answers once it took the message
	default: // all busy, or the broker closed
		return b.publish(topic, payload, qos)
	}
}

// inlinePublish is a message of Publish's waiting for a publisher.
type inlinePublish struct {
	topic   string
	payload []byte
	qos     byte
	done    chan error // room for the result
}

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

// startPublishers starts the goroutines that deliver Publish's messages;
// they end when the broker closes.
func (b *Broker) startPublishers() {
	b.pubs = make(chan inlinePublish)
	for range 2 * max(2, runtime.GOMAXPROCS(0)) {
		go func() {
			for {
				select {
				case p := <-b.pubs:
					p.done <- b.publish(p.topic, p.payload, p.qos)
				case <-b.done:
					return
				}
			}
		}()
	}
}

// publish delivers one message through mochi's inline client and reports a
// drop for a subscriber whose pending writes are full.
func (b *Broker) publish(topic string, payload []byte, qos byte) error {
	mark := b.drops.begin(topic)
	err := b.srv.Publish(topic, payload, false, qos)
	dropped := b.drops.end(topic, mark)
	if err != nil {
		return fmt.Errorf("broker: publish to %s: %w", truncate(topic), err)
	}
	if dropped {
		return fmt.Errorf("broker: publish to %s: %w", truncate(topic), ErrPendingWritesFull)
	}
	return nil
}

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
