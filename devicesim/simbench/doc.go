// Package simbench measures transports against simulated fleets: the ceiling
// of a transport (a minimal echo over the same broker and client stack) and
// the round trips of the real agent protocol (READ:SETTINGS?TAG probes through
// an agent.Transport), in one run, so their ratio says what the protocol costs.
// `fleetvault bench mqtt` and `fleetvault bench coap` print its Results;
// `fleetvault bench restore` reuses MQTTCeiling and CoAPCeiling.
//
// # Brokers in their own process
//
// 10,000 MQTT devices and an in-process broker need two file descriptors per
// device in one process; StartBrokerProcess runs the embedded broker in a
// child process (ServeBroker is the child's side) so each process needs one,
// and the devices' memory is measured apart from the broker's.
//
// # Caveats
//
// Figures are for loopback on the machine that ran them; the client, broker
// and devices share its cores.
package simbench
