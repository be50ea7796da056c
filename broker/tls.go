package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
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
		cert, err = tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("broker: TLS certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
		}
	case o.SelfSigned:
		cert, err = selfSigned(time.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("broker: self-signed certificate: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("broker: TLSAddr %s needs CertFile and KeyFile, or SelfSigned for development", o.TLSAddr)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("broker: TLS certificate %s: %w", o.CertFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, leaf, nil
}

// selfSigned makes an in-memory ECDSA P-256 certificate for localhost,
// 127.0.0.1 and ::1, valid for a year from now. For development only: clients
// must trust it explicitly (Broker.CertPool).
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fleetvault development broker"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so the certificate can be its own root in a client's pool
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
