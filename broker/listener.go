package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// netListener serves MQTT over a net.Listener it binds in Init (TCP, or TLS
// over TCP), so the broker can report the address actually bound (":0").
type netListener struct {
	id     string
	listen func() (net.Listener, error)
	ln     net.Listener
	log    *slog.Logger
	closed atomic.Bool
	gate   *gate // admits connections before mochi sees them
	// closeClients disconnects this listener's clients on Close (the
	// broker's, which avoids a deadlock in mochi's own).
	closeClients func(id string, mochi listeners.CloseFn)
}

var _ listeners.Listener = (*netListener)(nil)

func (l *netListener) ID() string       { return l.id }
func (l *netListener) Protocol() string { return l.id }
func (l *netListener) Address() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Init binds the address.
func (l *netListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := l.listen()
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until the listener is closed.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors (EMFILE) is the usual cause: back off
			// briefly instead of spinning, as net/http does.
			l.log.Error("mqtt accept failed; is ulimit -n high enough?", "listener", l.id, "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go func() {
			if err := l.gate.serve(l.id, conn, establish); err != nil {
				l.log.Debug("mqtt connection ended", "listener", l.id, "remote", conn.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

// Close stops accepting and disconnects the listener's clients.
func (l *netListener) Close(closeClients listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) {
		if l.ln != nil {
			_ = l.ln.Close()
		}
		l.closeClients(l.id, closeClients)
	}
}

// wsListener serves MQTT over WebSocket (subprotocol "mqtt", binary frames).
type wsListener struct {
	id           string
	addr         string
	closeClients func(id string, mochi listeners.CloseFn) // as netListener's
	gate         *gate
	ln           net.Listener
	srv          *http.Server
	log          *slog.Logger
	upgrader     websocket.Upgrader
	closed       atomic.Bool
	// establish is set by Serve before the server accepts.
	establish listeners.EstablishFn
}

var _ listeners.Listener = (*wsListener)(nil)

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Protocol() string { return "ws" }
func (l *wsListener) Address() string {
	if l.ln == nil {
		return l.addr
	}
	return l.ln.Addr().String()
}

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	l.upgrader = websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		// Devices are not browsers; authentication is MQTT's, not the origin's.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	l.srv = l.newServer()
	return nil
}

func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish // before srv.Serve, so before any handler runs
	if err := l.srv.Serve(l.ln); err != nil && !l.closed.Load() {
		l.log.Error("mqtt websocket listener stopped", "listener", l.id, "error", err)
	}
}

// newServer builds the HTTP server that upgrades requests to MQTT connections.
func (l *wsListener) newServer() *http.Server {
	return &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := l.upgrader.Upgrade(w, r, nil)
			if err != nil {
				return // the upgrader has answered the client with the error
			}
			defer c.Close()
			if err := l.gate.serve(l.id, &wsConn{Conn: c.NetConn(), c: c}, l.establish); err != nil {
				l.log.Debug("mqtt connection ended", "listener", l.id, "remote", r.RemoteAddr, "error", err)
			}
		}),
		ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) {
		if l.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = l.srv.Shutdown(ctx) // hijacked connections are not waited for
			cancel()
		} else if l.ln != nil {
			_ = l.ln.Close()
		}
		l.closeClients(l.id, closeClients)
	}
}

// wsConn presents a WebSocket as the byte stream mochi reads MQTT from.
type wsConn struct {
	net.Conn
	c  *websocket.Conn
	r  io.Reader // the current message, or nil
	mu sync.Mutex
}

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errors.New("websocket message is not binary")
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
