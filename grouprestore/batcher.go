package grouprestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errBatcherClosed is returned by a batcher that was closed.
var errBatcherClosed = errors.New("grouprestore: batcher closed")

// batcher group-commits: callers submit items and wait; one goroutine flushes
// whatever has queued in one call (one transaction, one fsync), so under load
// batches grow and the per-item cost of durability falls. No timer is needed:
// items that arrive during a flush form the next batch.
type batcher[T, R any] struct {
	flush func([]T) ([]R, error) // returns one result per item, in order
	max   int
	in    chan batchItem[T, R]
	done  chan struct{}
	once  sync.Once
}

type batchItem[T, R any] struct {
	v   T
	res chan batchResult[R]
}

type batchResult[R any] struct {
	r   R
	err error
}

func newBatcher[T, R any](max int, flush func([]T) ([]R, error)) *batcher[T, R] {
	b := &batcher[T, R]{flush: flush, max: max, in: make(chan batchItem[T, R], max), done: make(chan struct{})}
	go b.loop()
	return b
}

// Do submits v and waits until its batch is flushed (durable) or ctx ends.
// When ctx ends first, the item may still be flushed later.
func (b *batcher[T, R]) Do(ctx context.Context, v T) (R, error) {
	var zero R
	it := batchItem[T, R]{v: v, res: make(chan batchResult[R], 1)}
	select {
	case b.in <- it:
	case <-b.done:
		return zero, errBatcherClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-it.res:
		return r.r, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (b *batcher[T, R]) loop() {
	items := make([]batchItem[T, R], 0, b.max)
	vals := make([]T, 0, b.max)
	for {
		var first batchItem[T, R]
		select {
		case first = <-b.in:
		case <-b.done:
			return
		}
		items = append(items[:0], first)
	drain:
		for len(items) < b.max {
			select {
			case it := <-b.in:
				items = append(items, it)
			default:
				break drain
			}
		}
		vals = vals[:0]
		for _, it := range items {
			vals = append(vals, it.v)
		}
		rs, err := b.flush(vals)
		if err == nil && len(rs) != len(items) {
			err = fmt.Errorf("grouprestore: batch of %d gave %d results", len(items), len(rs))
		}
		for i, it := range items {
			var r R
			if err == nil {
				r = rs[i]
			}
			it.res <- batchResult[R]{r: r, err: err}
		}
	}
}

// Close stops the batcher; callers of a batch in flight still get its result.
func (b *batcher[T, R]) Close() { b.once.Do(func() { close(b.done) }) }
