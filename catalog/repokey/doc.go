// Package repokey holds an installation's repository key and the key files
// that wrap it, in the way restic's key files do.
//
// # Basics
//
// The repository key is 32 random bytes; everything an encrypted
// installation stores in secret (settings content, resource records) is
// sealed with XChaCha20-Poly1305 under it. It is never stored in clear:
// each key file in the installation's keys directory holds it sealed under
// a key derived from one passphrase with argon2id, with the argon2id
// parameters and salt beside it. Any one passphrase opens the repository;
// adding, listing, removing and changing passphrases touches only key files
// and never the data:
//
//	k, info, err := repokey.Create(dir, pass, repokey.DefaultParams()) // a new repository key
//	k, info, err = repokey.Open(dir, pass)                    // the key, from any key file
//	other, err := repokey.Add(dir, k, pass2, repokey.DefaultParams())
//
// XChaCha20-Poly1305 rather than AES-256-GCM: its 24-byte nonces can be
// drawn at random for every record without a practical risk of reuse
// (GCM's 12-byte random nonces are safe for about 2^32 records per key,
// which a large fleet's years of backups approach), and it is fast and
// constant-time on CPUs without AES instructions (ARM gateways).
//
// # Caveats
//
// Lose every passphrase (and every key file) and the data is lost: there is
// no recovery. A key file is not a secret by itself, but with a weak
// passphrase it can be attacked offline; argon2id's memory cost
// (DefaultParams: 64 MiB, 3 passes) slows that down.
package repokey
