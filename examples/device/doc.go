// Command device is a thermostat that embeds the Fleetvault media agent: it
// serves its tag and settings, and applies settings a group restore sends it,
// over MQTT (and over CoAP with --coap).
//
//	go run ./examples/device --broker mqtt://127.0.0.1:1883 --id home0001-climate --password "$SECRET"
//	go run ./examples/device --coap 127.0.0.1:5683 --id home0001-climate
//
// It shows the three things a device maker writes: an agent.Device (here a
// mutex-protected settings map that refuses values it cannot hold), an
// agent.Handler around it, and a transport that feeds the handler.
package main
