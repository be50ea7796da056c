package simbench

import (
	"bytes"
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
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// echoFleet is minimal CoAP endpoints on go-coap with the options of
// agent/coap's device server (blockwise on, a shared timer and message pool),
// that answer any request with an empty Response carrying the request's
// correlation id: no resource routing, no Handler, no Device.
type echoFleet struct {
	stop    chan struct{}
	servers []*udpserver.Server
	ids     []identifiers.ID
	wg      sync.WaitGroup
}

func startCoAPEcho(devices int, host string) (*echoFleet, error) {
	e := &echoFleet{stop: make(chan struct{})}
	runner := periodic.New(e.stop, time.Second)
	msgs := pool.New(1024, 2048)
	for i := 0; i < devices; i++ {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
		if err != nil {
			e.close()
			return nil, fmt.Errorf("simbench: CoAP echo device %d: %w", i, err)
		}
		addr := conn.LocalAddr().(*net.UDPAddr)
		dev := fmt.Sprintf("echo%06d", i)
		srv := udpserver.New(
			options.WithHandlerFunc(udpclient.HandlerFunc(func(w *responsewriter.ResponseWriter[*udpclient.Conn], r *pool.Message) {
				echo(w, r, dev)
			})),
			options.WithMaxMessageSize(coap.DefaultMaxDatagram),
			options.WithBlockwise(true, blockwise.SZX1024, 10*time.Second), // as agent/coap's device server
			options.WithPeriodicRunner(runner),
			options.WithMessagePool(msgs),
			options.WithInactivityMonitor(30*time.Second, func(cc *udpclient.Conn) { _ = cc.Close() }),
			options.WithReceivedMessageQueueSize(4),
		)
		e.servers = append(e.servers, srv)
		e.ids = append(e.ids, identifiers.ID{Scheme: "coap", Address: addr.IP.String(), Port: addr.Port,
			Method: agent.MethodRead, Params: []string{agent.ParamSettings}, Location: agent.LocTag})
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			_ = srv.Serve(coapnet.NewUDPConn("udp", conn))
		}()
	}
	return e, nil
}

func echo(w *responsewriter.ResponseWriter[*udpclient.Conn], r *pool.Message, dev string) {
	q, _ := r.Queries()
	id := ""
	for _, o := range q {
		if v, ok := strings.CutPrefix(o, coap.QueryID+"="); ok {
			id = v
		}
	}
	b, _ := agent.EncodeResponse(&agent.Response{ID: id, Device: dev})
	_ = w.SetResponse(codes.Content, message.AppCBOR, bytes.NewReader(b))
}

func (e *echoFleet) close() {
	for _, s := range e.servers {
		s.Stop()
	}
	e.wg.Wait()
	close(e.stop)
}

// CoAPCeiling measures the CoAP ceiling: an agent/coap Transport (the client
// stack the probes use) sends GET requests to devices minimal go-coap
// endpoints on host that answer at once without the agent Handler. At most
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
	tr, err := coap.NewTransport(coap.TransportOptions{Listen: net.JoinHostPort(host, "0")})
	if err != nil {
		return Count{}, err
	}
	defer tr.Close()
	do := func(ctx context.Context, i int) error {
		_, err := tr.Do(ctx, e.ids[i], &agent.Request{})
		return err
	}
	if warmup > 0 {
		if _, err := drive(ctx, warmup, concurrency, len(e.ids), do); err != nil {
			return Count{}, err
		}
	}
	return drive(ctx, d, concurrency, len(e.ids), do)
}
