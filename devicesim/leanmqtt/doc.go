// Package leanmqtt is a small MQTT 3.1.1 and 5 client for simulating many
// devices in one process: one TCP connection and one reader goroutine per
// client, writes under a mutex, QoS 0 and 1 both ways, keepalive pings from a
// timer. A paho client costs about 13 goroutines; this one costs one, so
// 100,000 simulated devices fit in a few GiB.
//
// Packets are encoded and decoded with mochi-mqtt's packets package.
//
// # Caveats
//
// Sessions are clean: nothing is resent after a reconnect, and QoS 1
// publishes are counted until their PUBACK but never retransmitted (a
// simulated device that loses its connection has lost the message, as a
// real one might). QoS 2 is not spoken. Callers reconnect by dialling again.
package leanmqtt
