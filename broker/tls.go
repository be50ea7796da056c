package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/tlscert"
)

// tlsConfig loads the certificate and key files, or makes a self-signed
// certificate, and returns the server TLS configuration and the leaf.
func tlsConfig(o Options) (*tls.Config, *x509.Certificate, error) {
	var cert tls.Certificate
	var err error
	switch {
	case o.CertFile != "" || o.KeyFile != "":
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, nil, fmt.Errorf("broker: TLS needs both CertFile and KeyFile (got cert %q, key %q)", o.CertFile, o.KeyFile)
		}
		cert, err = tlscert.Load(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("broker: %w", err)
		}
	case o.SelfSigned:
		cert, err = tlscert.SelfSigned("fleetvault development broker", nil, time.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("broker: self-signed certificate: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("broker: TLSAddr %s needs CertFile and KeyFile, or SelfSigned for development", o.TLSAddr)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, cert.Leaf, nil
}
