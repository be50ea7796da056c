package coap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// The lean exchange path. A request whose payload fits one block is sent by
// the transport itself, encoded with go-coap's message codec, from the one
// socket; a single goroutine reads that socket and hands each answer straight
// to the caller waiting for it. The caller retransmits on its own timer (RFC
// 7252 section 4.2). Per device it keeps what RFC 7252 asks: a message-id
// sequence, and one outstanding exchange at a time (NSTART 1).
//
// go-coap's connection machinery (a goroutine per peer fed by the read loop,
// a peer lookup and expiry scan per datagram, blockwise and observation
// layers, a periodic sweep that retransmits) cost several times the CPU of
// this path per exchange (doc.go); it still carries every transfer that
// needs blockwise.

// maxAnswerOptions bounds the options of an answer the read loop decodes;
// a datagram with more is counted as malformed and dropped.
const maxAnswerOptions = 32

// fastMaxBody is the largest request payload the lean path sends: one block.
// Larger requests go blockwise through go-coap.
const fastMaxBody = 1024 // blockSZX.Size()

// answer is what the read loop hands to the exchange waiting for it.
type answer struct {
	typ     message.Type
	code    codes.Code
	mid     uint16
	token   uint64
	cf      int  // content format; -1 when the answer names none
	block   bool // a Block1 or Block2 option: a blockwise answer
	payload []byte
}

// exchange is one confirmable request waiting for its answer. Its fields do
// not change once it is published in peer.cur.
type exchange struct {
	token uint64
	mid   uint16
	ch    chan answer
}

// errReset is an exchange the device answered with a Reset.
var errReset = errors.New("the device reset the exchange (it does not serve this request)")

// errNoAck is an exchange retransmitted MaxRetransmit times without an answer.
var errNoAck = errors.New("no acknowledgement")

// scratch is the encoding space of one request.
type scratch struct {
	opts  [16]message.Option
	query [4 * maxQueryOption]byte
	out   []byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{out: make([]byte, 0, 1500)} }}

// fastRequest is a request for the lean path.
type fastRequest struct {
	code  codes.Code
	path  string   // absolute, e.g. PathTag
	query []string // Uri-Query options, for a GET
	body  []byte   // CBOR payload, for a PUT or POST
}

// encode writes the datagram of r with token and mid into s.out.
func (r *fastRequest) encode(s *scratch, token uint64, mid uint16) ([]byte, error) {
	opts := s.opts[:0]
	for seg := range strings.SplitSeq(strings.TrimPrefix(r.path, "/"), "/") {
		opts = append(opts, message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	if r.body != nil {
		opts = append(opts, message.Option{ID: message.ContentFormat, Value: []byte{byte(message.AppCBOR)}})
	}
	q := s.query[:0]
	for _, v := range r.query {
		start := len(q)
		q = append(q, v...)
		opts = append(opts, message.Option{ID: message.URIQuery, Value: q[start:len(q):len(q)]})
	}
	var tok [8]byte
	binary.BigEndian.PutUint64(tok[:], token)
	m := message.Message{Token: tok[:], Options: opts, Code: r.code, Payload: r.body, MessageID: int32(mid), Type: message.Confirmable}
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		return nil, err
	}
	if cap(s.out) < size {
		s.out = make([]byte, 0, size)
	}
	out := s.out[:size]
	if _, err := coder.DefaultCoder.Encode(m, out); err != nil {
		return nil, err
	}
	return out, nil
}

// fastExchange sends r to p and waits for its answer, retransmitting as RFC
// 7252 section 4.2 says, until ctx ends or the transport closes.
func (t *Transport) fastExchange(ctx context.Context, p *peer, r *fastRequest) (answer, error) {
	if err := p.acquire(ctx, t.done); err != nil {
		return answer{}, err
	}
	defer p.release()
	select {
	case t.window <- struct{}{}:
		defer func() { <-t.window }()
	case <-ctx.Done():
		return answer{}, ctx.Err()
	case <-t.done:
		return answer{}, agent.ErrClosed
	}
	ex := &exchange{token: rand.Uint64(), mid: uint16(p.mid.Add(1)), ch: make(chan answer, 2)}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	datagram, err := r.encode(s, ex.token, ex.mid)
	if err != nil {
		return answer{}, fmt.Errorf("encode request: %w", err)
	}
	p.cur.Store(ex)
	defer p.cur.Store(nil)
	if _, err := t.conn.WriteToUDPAddrPort(datagram, p.addr); err != nil {
		return answer{}, err
	}
	timeout := t.firstTimeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	acked := false
	for sent := 1; ; {
		select {
		case a := <-ex.ch:
			switch {
			case a.typ == message.Reset:
				return answer{}, errReset
			case a.code == codes.Empty:
				acked = true // a separate response follows: stop retransmitting
			default:
				return a, nil
			}
		case <-timer.C:
			if acked {
				continue
			}
			if sent > t.opts.MaxRetransmit {
				return answer{}, fmt.Errorf("%w after %d transmissions", errNoAck, sent)
			}
			if _, err := t.conn.WriteToUDPAddrPort(datagram, p.addr); err != nil {
				return answer{}, err
			}
			sent++
			t.retransmits.Add(1)
			timeout *= 2
			timer.Reset(timeout)
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-t.done:
			return answer{}, agent.ErrClosed
		}
	}
}

// firstTimeout is the initial retransmission timeout: a random duration
// between ACK_TIMEOUT and ACK_TIMEOUT * ACK_RANDOM_FACTOR (1.5).
func (t *Transport) firstTimeout() time.Duration {
	return t.opts.AckTimeout + time.Duration(rand.Int64N(int64(t.opts.AckTimeout/2)+1))
}

// readLoop reads the transport's socket until it is closed and hands every
// answer to the exchange it belongs to.
func (t *Transport) readLoop() {
	defer close(t.readDone)
	buf := make([]byte, transportMaxDatagram+1)
	m := message.Message{Options: make(message.Options, 0, maxAnswerOptions)}
	var backoff time.Duration
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.coapError(fmt.Errorf("read: %w", err))
			// A socket that keeps failing must not spin: back off, up to a second.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-t.done:
				return
			}
			continue
		}
		backoff = 0
		if n > transportMaxDatagram {
			t.coapError(fmt.Errorf("%v: datagram over %d bytes", from, transportMaxDatagram))
			continue
		}
		m.Options = m.Options[:0]
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
			t.coapError(fmt.Errorf("%v: %w", from, err))
			continue
		}
		t.dispatch(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), &m)
	}
}

// dispatch matches a datagram to the exchange outstanding with its sender:
// an acknowledgement or reset by message id, a separate response by token
// (RFC 7252 sections 4 and 5.3.2).
func (t *Transport) dispatch(from netip.AddrPort, m *message.Message) {
	p := t.peerAt(from)
	var ex *exchange
	if p != nil {
		ex = p.cur.Load()
	}
	mid := uint16(m.MessageID)
	switch m.Type {
	case message.Acknowledgement, message.Reset:
		if ex == nil || mid != ex.mid {
			return // late, duplicated or stray: nothing waits for it
		}
		if m.Code != codes.Empty && (len(m.Token) != 8 || tokenOf(m.Token) != ex.token) {
			t.coapError(fmt.Errorf("%v: acknowledgement %d with a token that is not the request's", from, mid))
			return
		}
		ex.deliver(answerOf(m))
	case message.Confirmable, message.NonConfirmable:
		isResponse := m.Code >= 64 // class 2, 4 or 5: a separate response
		matched := isResponse && ex != nil && len(m.Token) == 8 && tokenOf(m.Token) == ex.token
		if matched {
			ex.deliver(answerOf(m))
		}
		if m.Type != message.Confirmable {
			return
		}
		if matched || (isResponse && p != nil && p.lastSeparate.Load() == uint32(mid)+1) {
			if matched {
				p.lastSeparate.Store(uint32(mid) + 1)
			}
			t.sendEmpty(from, message.Acknowledgement, mid)
			return
		}
		// A request (the transport serves none), a ping, or a response to
		// nothing outstanding: reject it.
		t.sendEmpty(from, message.Reset, mid)
	}
}

// sendEmpty sends an empty ACK or RST with mid to addr.
func (t *Transport) sendEmpty(addr netip.AddrPort, typ message.Type, mid uint16) {
	d := [4]byte{1<<6 | byte(typ)<<4, byte(codes.Empty), byte(mid >> 8), byte(mid)}
	if _, err := t.conn.WriteToUDPAddrPort(d[:], addr); err != nil && !t.closed.Load() {
		t.coapError(fmt.Errorf("%v: send %v: %w", addr, typ, err))
	}
}

// deliver hands a to the exchange without blocking the read loop; an answer
// that finds the exchange's queue full is dropped (it is a duplicate, or the
// exchange is ending).
func (ex *exchange) deliver(a answer) {
	select {
	case ex.ch <- a:
	default:
	}
}

func answerOf(m *message.Message) answer {
	a := answer{typ: m.Type, code: m.Code, mid: uint16(m.MessageID), token: tokenOf(m.Token), cf: -1,
		block: m.Options.HasOption(message.Block1) || m.Options.HasOption(message.Block2)}
	if cf, err := m.Options.ContentFormat(); err == nil {
		a.cf = int(cf)
	}
	if len(m.Payload) > 0 {
		a.payload = bytes.Clone(m.Payload)
	}
	return a
}

// tokenOf reads a token of up to 8 bytes as a number.
func tokenOf(tok []byte) uint64 {
	var v uint64
	for _, b := range tok {
		v = v<<8 | uint64(b)
	}
	return v
}
