package notify

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// EmailOptions configure the SMTP channel.
type EmailOptions struct {
	Host string // the SMTP server (required)
	Port int    // 0: 587 (submission)
	// Username and Password log in with SMTP AUTH (the strongest mechanism
	// the server offers); an empty Username sends without AUTH.
	Username, Password string
	From               string      // the sender address (required), e.g. "Fleetvault <fleetvault@example.com>"
	TLSConfig          *tls.Config // nil: the system's roots, server name Host
	Timeout            time.Duration
}

// Email sends Messages over SMTP with STARTTLS, always: a server that does
// not offer STARTTLS is an error, so neither the password nor the message
// crosses the network in clear.
type Email struct {
	opts EmailOptions
}

// NewEmail checks opts and returns the channel.
func NewEmail(opts EmailOptions) (*Email, error) {
	if opts.Host == "" {
		return nil, fmt.Errorf("notify: email: %w: no SMTP host", ErrInvalid)
	}
	if _, err := mail.ParseAddress(opts.From); err != nil {
		return nil, fmt.Errorf("notify: email: %w: sender %q: %v", ErrInvalid, opts.From, err)
	}
	if opts.Port == 0 {
		opts.Port = 587
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("notify: email: %w: port %d", ErrInvalid, opts.Port)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		opts.TLSConfig = opts.TLSConfig.Clone()
	}
	if opts.TLSConfig.ServerName == "" {
		opts.TLSConfig.ServerName = opts.Host
	}
	return &Email{opts: opts}, nil
}

// Send delivers msg to the addresses in to, in one SMTP transaction.
func (m *Email) Send(ctx context.Context, to []string, msg Message) error {
	if len(to) == 0 {
		return fmt.Errorf("notify: email: %w: no recipient", ErrInvalid)
	}
	for _, a := range to {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("notify: email: %w: recipient %q: %v", ErrInvalid, a, err)
		}
	}
	gm := gomail.NewMsg()
	if err := gm.From(m.opts.From); err != nil {
		return fmt.Errorf("notify: email: sender %q: %w", m.opts.From, err)
	}
	if err := gm.To(to...); err != nil {
		return fmt.Errorf("notify: email: recipients %q: %w", to, err)
	}
	gm.Subject(msg.Subject)
	gm.SetDate()
	gm.SetMessageID()
	gm.SetBodyString(gomail.TypeTextPlain, msg.Body)

	opts := []gomail.Option{
		gomail.WithPort(m.opts.Port),
		gomail.WithTLSPolicy(gomail.TLSMandatory),
		gomail.WithTLSConfig(m.opts.TLSConfig),
		gomail.WithTimeout(m.opts.Timeout),
	}
	if m.opts.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.opts.Username), gomail.WithPassword(m.opts.Password))
	}
	c, err := gomail.NewClient(m.opts.Host, opts...)
	if err != nil {
		return fmt.Errorf("notify: email via %s:%d: %w", m.opts.Host, m.opts.Port, err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		return fmt.Errorf("notify: email to %v via %s:%d: %w", to, m.opts.Host, m.opts.Port, err)
	}
	return nil
}
