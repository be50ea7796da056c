package simbench

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// echoFleet is minimal CoAP endpoints, one UDP socket and one goroutine
// each, shaped like agent/coap's lean device path (read a datagram, decode it
// with go-coap's coder, answer with a piggybacked ACK) but without routing,
// Handler or Device: each answers any confirmable request with an empty
// Response carrying the request's correlation id.
type echoFleet struct {
	conns []*net.UDPConn
	ids   []identifiers.ID
	wg    sync.WaitGroup
}

func startCoAPEcho(devices int, host string) (*echoFleet, error) {
	e := &echoFleet{}
	for i := 0; i < devices; i++ {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
		if err != nil {
			e.close()
			return nil, fmt.Errorf("simbench: CoAP echo device %d: %w", i, err)
		}
		addr := conn.LocalAddr().(*net.UDPAddr)
		e.conns = append(e.conns, conn)
		e.ids = append(e.ids, identifiers.ID{Scheme: "coap", Address: addr.IP.String(), Port: addr.Port,
			Method: agent.MethodRead, Params: []string{agent.ParamSettings}, Location: agent.LocTag})
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			echoLoop(conn, fmt.Sprintf("echo%06d", i))
		}()
	}
	return e, nil
}

// echoLoop answers until the socket closes.
func echoLoop(conn *net.UDPConn, dev string) {
	buf := make([]byte, coap.DefaultMaxDatagram+1)
	var out []byte
	m := message.Message{Options: make(message.Options, 0, 16)}
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		m.Options = m.Options[:0]
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil || m.Type != message.Confirmable {
			continue
		}
		id := ""
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(string(o.Value), coap.QueryID+"="); ok && o.ID == message.URIQuery {
				id = v
			}
		}
		body, _ := agent.EncodeResponse(&agent.Response{ID: id, Device: dev})
		opts := [1]message.Option{{ID: message.ContentFormat, Value: []byte{byte(message.AppCBOR)}}}
		ack := message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: m.MessageID, Token: m.Token, Options: opts[:], Payload: body}
		size, err := coder.DefaultCoder.Size(ack)
		if err != nil {
			continue
		}
		if cap(out) < size {
			out = make([]byte, size)
		}
		out = out[:size]
		if _, err := coder.DefaultCoder.Encode(ack, out); err != nil {
			continue
		}
		_, _ = conn.WriteToUDPAddrPort(out, from)
	}
}

func (e *echoFleet) close() {
	for _, c := range e.conns {
		c.Close()
	}
	e.wg.Wait()
}

// CoAPCeiling measures the CoAP ceiling: an agent/coap Transport (the client
// stack the probes use) sends GET requests to devices minimal endpoints on
// host (echoFleet) that answer at once, without the agent Handler. At most
// concurrency requests are outstanding. It returns round trips per second.
// The endpoints are its own, closed when it returns.
func CoAPCeiling(ctx context.Context, devices int, host string, d time.Duration, concurrency int) (float64, error) {
	c, err := CoAPCeilingCount(ctx, devices, host, d, 0, concurrency)
	return c.PerSecond(), err
}

// CoAPCeilingCount is CoAPCeiling with a warm-up and the full count.
func CoAPCeilingCount(ctx context.Context, devices int, host string, d, warmup time.Duration, concurrency int) (Count, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	e, err := startCoAPEcho(devices, host)
	if err != nil {
		return Count{}, err
	}
	defer e.close()
	// The ceiling is plain CoAP: bare endpoints, no agent, no DTLS.
	tr, err := coap.NewTransport(coap.TransportOptions{Listen: net.JoinHostPort(host, "0"), Insecure: true})
	if err != nil {
		return Count{}, err
	}
	defer tr.Close()
	do := func(ctx context.Context, i int) error {
		_, err := tr.Do(ctx, e.ids[i], &agent.Request{})
		return err
	}
	if warmup > 0 {
		if _, err := Drive(ctx, warmup, concurrency, len(e.ids), do); err != nil {
			return Count{}, err
		}
	}
	return Drive(ctx, d, concurrency, len(e.ids), do)
}
