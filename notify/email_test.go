package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/fleetvault/fleetvault/tlscert"
)

// smtpServer is a real SMTP server on loopback (emersion/go-smtp) that
// offers STARTTLS, allows AUTH PLAIN only after it, and keeps what arrives.
type smtpServer struct {
	addr  *net.TCPAddr
	roots *x509.CertPool

	mu     sync.Mutex
	mails  []receivedMail
	logins []string
}

type receivedMail struct {
	from   string
	to     []string
	tls    bool
	user   string
	header mail.Header
	body   string // decoded
}

const smtpUser, smtpPassword = "fleetvault", "s3cret-pass"

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	cert, err := tlscert.SelfSigned("smtp.test", []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{roots: x509.NewCertPool()}
	s.roots.AddCert(leaf)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s, conn: c}, nil }))
	srv.Domain = "smtp.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.AllowInsecureAuth = false // AUTH only over TLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().(*net.TCPAddr)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != smtpUser || password != smtpPassword {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.mails = append(s.srv.mails, receivedMail{from: s.from, to: s.to, tls: isTLS, user: s.user, header: m.Header,
		body: strings.ReplaceAll(string(b), "\r\n", "\n")})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpServer) email(t *testing.T, user, password string) *Email {
	t.Helper()
	m, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: s.addr.Port, Username: user, Password: password,
		From: "Fleetvault <fleetvault@example.com>", TLSConfig: &tls.Config{RootCAs: s.roots}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEmailArrives sends every sample event through a Notifier to the SMTP
// server and checks each mail's envelope, TLS, login, subject and body.
func TestEmailArrives(t *testing.T) {
	srv := startSMTP(t)
	rec := &recorder{}
	n, err := New(Options{Email: srv.email(t, smtpUser, smtpPassword), Recorder: rec, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r, _ := NewRenderer()
	want := map[string]Message{} // by event id
	for _, e := range sampleEvents() {
		m, err := r.Render(e)
		if err != nil {
			t.Fatal(err)
		}
		want[e.ID] = m
		if err := n.Notify(e, Target{Email: "owner+" + e.ID + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, func() bool { s := n.Stats(); return s.Sent+s.Undeliverable == uint64(len(want)) })
	if u := rec.all(); len(u) > 0 {
		t.Fatalf("undeliverable: %v", u[0].Err)
	}
	dec := new(mime.WordDecoder)
	for _, got := range srv.received() {
		if len(got.to) != 1 {
			t.Fatalf("recipients %v", got.to)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(got.to[0], "owner+"), "@example.com")
		w, ok := want[id]
		if !ok {
			t.Fatalf("mail to unexpected %s", got.to[0])
		}
		t.Run(id, func(t *testing.T) {
			subject, err := dec.DecodeHeader(got.header.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			if !got.tls || got.user != smtpUser || got.from != "fleetvault@example.com" {
				t.Errorf("tls %v, user %q, from %q", got.tls, got.user, got.from)
			}
			if subject != w.Subject {
				t.Errorf("subject %q, want %q", subject, w.Subject)
			}
			if strings.TrimRight(got.body, "\n") != strings.TrimRight(w.Body, "\n") {
				t.Errorf("body:\n%s\nwant:\n%s", got.body, w.Body)
			}
			if !strings.HasPrefix(got.header.Get("Content-Type"), "text/plain") {
				t.Errorf("content type %q", got.header.Get("Content-Type"))
			}
		})
	}
	if got := len(srv.received()); got != len(want) {
		t.Fatalf("%d mails arrived, want %d", got, len(want))
	}
}

func TestEmailRefused(t *testing.T) {
	srv := startSMTP(t)
	tests := []struct {
		name string
		m    *Email
	}{
		{"wrong password", srv.email(t, smtpUser, "nope")},
		{"no login", srv.email(t, "", "")},
		{"untrusted certificate", func() *Email {
			m, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: srv.addr.Port, Username: smtpUser, Password: smtpPassword,
				From: "fleetvault@example.com", Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}()},
	}
	msg := Message{Subject: "s", Body: "b"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Send(context.Background(), []string{"a@example.com"}, msg); err == nil {
				t.Fatal("sent")
			}
			if n := len(srv.received()); n != 0 {
				t.Fatalf("%d mails arrived", n)
			}
		})
	}
}

func TestNewEmailInvalid(t *testing.T) {
	for name, o := range map[string]EmailOptions{
		"no host":    {From: "a@example.com"},
		"bad sender": {Host: "h", From: "not an address"},
		"bad port":   {Host: "h", From: "a@example.com", Port: 70000},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewEmail(o); !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewEmail = %v", err)
			}
		})
	}
	m, _ := NewEmail(EmailOptions{Host: "h", From: "a@example.com"})
	if err := m.Send(context.Background(), []string{"nope"}, Message{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad recipient: %v", err)
	}
}
