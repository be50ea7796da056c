// Command broker runs Fleetvault's embedded MQTT broker on its own, with
// device credentials from a YAML file, and prints presence and counters.
//
//	go run ./examples/broker -creds broker/testdata/credentials.yaml -tcp 127.0.0.1:1883
//
// Make a device entry with a fresh secret:
//
//	go run ./examples/broker -new-device home1-thermo
//
// which prints the secret (give it to the device) and the YAML entry (add it
// to the credentials file).
package main
