// Package notifytest holds what tests of notifications share: a real SMTP
// server on loopback (StartSMTP) that speaks STARTTLS and AUTH PLAIN and
// keeps what arrives, so package notify's tests and the server's
// end-to-end tests check delivery through the same receiver.
package notifytest
