// Package tlscert makes and keeps the TLS certificates Fleetvault serves
// with when the operator gives none: a self-signed ECDSA P-256 certificate
// for the loopback names and the host's own names.
//
// # Basics
//
// SelfSigned makes one in memory (the embedded broker's development
// listener). Persistent loads the pair kept in a directory, or makes and
// keeps one there the first time, so a client that trusts the certificate
// file (curl --cacert DIR/api-cert.pem) keeps trusting it across restarts.
//
// # Caveats
//
// A self-signed certificate is its own root: a client must be told to trust
// it. It is for development, labs and closed networks; a certificate from the
// site's own CA (files given to --http-cert/--http-key) is the production
// choice.
package tlscert
