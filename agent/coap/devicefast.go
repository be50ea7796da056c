package coap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// The device's lean path. The goroutine reading the device's socket answers
// a confirmable GET, PUT or POST that fits one block itself, with a
// piggybacked acknowledgement, without handing the request to another
// goroutine. Everything else (blockwise transfers, an answer larger than a
// block, non-confirmable or unknown messages, critical options it does not
// know) goes to go-coap's connection for that peer (devicecoap.go), which
// answers as the whole go-coap stack would.
//
// Duplicates (RFC 7252 section 4.5): the last answer is kept and sent again
// for a retransmission of the request it answered. An older duplicate is
// served again, which section 4.5 allows for requests that are idempotent:
// every request of this protocol is (a GET is safe, a PUT and a POST carry
// the request's job and correlation id).

// maxRequestOptions bounds the options of a request the lean path decodes;
// a request with more goes to go-coap.
const maxRequestOptions = 32

// lastAnswer is the datagram the device sent last, for retransmissions.
type lastAnswer struct {
	from     netip.AddrPort
	mid      uint16
	token    [8]byte
	tkl      int
	datagram []byte
}

// answers reports whether l is the answer to the request m from from: the
// same sender, message id and token (a sender that reused a message id for
// a new request gets a new answer, not a stale one).
func (l *lastAnswer) answers(from netip.AddrPort, m *message.Message) bool {
	return l.datagram != nil && l.from == from && l.mid == uint16(m.MessageID) && bytes.Equal(l.token[:l.tkl], m.Token)
}

// readLoop reads the device's socket until it is closed.
func (s *Server) readLoop() error {
	buf := make([]byte, s.maxDatagram+1)
	m := message.Message{Options: make(message.Options, 0, maxRequestOptions)}
	var last lastAnswer
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("coap: serve %s: %w", s.Addr(), err)
		}
		if n > s.maxDatagram {
			s.dropped.Add(1)
			s.log.Debug("coap: dropped datagram over the size limit", "device", s.h.ID(), "from", from, "limit", s.maxDatagram)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if s.answerFast(from, buf[:n], &m, &last) {
			continue
		}
		s.process(from, buf[:n])
	}
}

// answerFast answers datagram on the lean path and reports whether it did;
// false leaves the datagram to go-coap.
func (s *Server) answerFast(from netip.AddrPort, datagram []byte, m *message.Message, last *lastAnswer) bool {
	m.Options = m.Options[:0]
	if _, err := coder.DefaultCoder.Decode(datagram, m); err != nil {
		return false
	}
	if m.Type != message.Confirmable || (m.Code != codes.GET && m.Code != codes.PUT && m.Code != codes.POST) || !leanOptions(m.Options) {
		return false
	}
	if last.answers(from, m) {
		s.write(from, last.datagram)
		return true
	}
	in, err := incomingOf(m)
	if err != nil {
		return false
	}
	resp := s.serve(s.ctx, in)
	code, body := s.encodeAnswer(m.Code, resp)
	if len(body) > fastMaxBody {
		return false // go-coap answers it again, block by block
	}
	opts := [1]message.Option{{ID: message.ContentFormat, Value: []byte{byte(message.AppCBOR)}}}
	ack := message.Message{Type: message.Acknowledgement, Code: code, MessageID: m.MessageID, Token: m.Token, Options: opts[:], Payload: body}
	size, err := coder.DefaultCoder.Size(ack)
	if err != nil {
		s.coapError(fmt.Errorf("size answer: %w", err))
		return false
	}
	out := last.datagram[:0]
	if cap(out) < size {
		out = make([]byte, size)
	}
	out = out[:size]
	if _, err := coder.DefaultCoder.Encode(ack, out); err != nil {
		*last = lastAnswer{} // its buffer was written over
		s.coapError(fmt.Errorf("encode answer: %w", err))
		return false
	}
	s.count(resp)
	next := lastAnswer{from: from, mid: uint16(m.MessageID), datagram: out}
	next.tkl = copy(next.token[:], m.Token)
	*last = next
	s.write(from, out)
	return true
}

// leanOptions reports whether the lean path knows every critical option in
// opts: the ones a request of this protocol carries. Block1 and Block2 are
// critical, so a blockwise transfer goes to go-coap.
func leanOptions(opts message.Options) bool {
	for _, o := range opts {
		switch o.ID {
		case message.URIHost, message.URIPort, message.URIPath, message.ContentFormat, message.URIQuery, message.Accept:
		default:
			if o.ID&1 == 1 { // critical (RFC 7252 section 5.4.6)
				return false
			}
		}
	}
	return true
}

// incomingOf is what serve needs of a decoded request.
func incomingOf(m *message.Message) (incoming, error) {
	path, err := m.Options.Path()
	if err != nil && !errors.Is(err, message.ErrOptionNotFound) {
		return incoming{}, err
	}
	in := incoming{method: m.Code, path: path, cf: -1, body: m.Payload}
	if cf, err := m.Options.ContentFormat(); err == nil {
		in.cf = int(cf)
	}
	if m.Code == codes.GET {
		in.queries, in.queryErr = m.Options.Queries()
	}
	return in, nil
}

func (s *Server) write(to netip.AddrPort, datagram []byte) {
	if _, err := s.conn.WriteToUDPAddrPort(datagram, to); err != nil && !s.closed.Load() {
		s.coapError(fmt.Errorf("send answer to %v: %w", to, err))
	}
}

// encodeAnswer returns the CoAP code and payload that carry resp, an answer
// to a request with method.
func (s *Server) encodeAnswer(method codes.Code, resp *agent.Response) (codes.Code, []byte) {
	code := responseCode(method, resp)
	b, err := agent.EncodeResponse(resp)
	if err != nil {
		code = codes.InternalServerError
		b, _ = agent.EncodeResponse(s.refusal(resp.ID, agent.CodeInternal, "encode response: "+err.Error()))
	}
	return code, b
}

func (s *Server) count(resp *agent.Response) {
	if resp.Err != nil {
		s.refused.Add(1)
	} else {
		s.answered.Add(1)
	}
}
