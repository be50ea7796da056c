// Package mosquittoconf writes the configuration of a Mosquitto 2 broker that
// serves as a Fleetvault broker shard: mosquitto.conf, a password file in
// Mosquitto's own PBKDF2-SHA512 format ($7$), and the media-agent protocol's
// ACL (devices: their own topics; server identities: every request topic to
// write, every response topic to read), as in examples/mosquitto.
//
// # Basics
//
//	err := mosquittoconf.Write(dir, mosquittoconf.Config{Listen: "127.0.0.1:18830",
//		Identities: []mosquittoconf.Identity{{Name: "fleetvault", Password: pw, Server: true}, {Name: "home1-thermo", Password: devPW}}})
//	// mosquitto -c dir/mosquitto.conf
//
// # Caveats
//
// Mosquitto cannot check Fleetvault's argon2id hashes, so the password file is
// made from the secrets themselves, when they are known (at provisioning);
// the resource database keeps only hashes. Mosquitto re-reads the password
// and ACL files on SIGHUP.
package mosquittoconf
