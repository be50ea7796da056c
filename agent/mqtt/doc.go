// Package mqtt carries the media-agent protocol over MQTT 3.1.1, with paho
// clients: Transport is the server side, Serve the device side that a device
// maker embeds.
//
// # Basics
//
// A device with id D connects with client id and user name D, subscribes to
// fleetvault/v1/D/req and answers on fleetvault/v1/D/res; on every connect it
// announces itself there with a presence message (a response with an empty
// correlation id). The server connects once under its own identity,
// subscribes to fleetvault/v1/+/res and publishes requests to each device's
// req topic. All of it at QoS 1 unless asked otherwise.
//
//	tr, err := mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: "mqtt://127.0.0.1:1883", Username: "fleetvault", Password: pw})
//	resp, err := tr.Do(ctx, identifiers.ReadTag("mqtt", "home0001-climate", 0), &agent.Request{})
//
// and on the device:
//
//	err := mqtt.Serve(ctx, agent.NewHandler("home0001-climate", thermostat, agent.HandlerOptions{}), mqtt.DeviceOptions{BrokerURL: url, Password: pw})
//
// A fleet too large for one broker process is spread over broker shards: a
// device's identifier names its shard in a broker:NAME param
// (docs/spec/identifiers.md section 9.1), and Shards routes each request to
// the Transport of that shard (TransportOptions.Background connects it
// without holding up the server; until it is connected its devices fail at
// once with agent.ErrUnreachable and an error naming the shard).
//
// # Caveats
//
// The transport trusts neither devices nor strangers: a response whose topic
// and device field disagree, which does not decode, or whose correlation id
// no call is waiting for (a late answer, a guess) is dropped and counted in
// Stats, never delivered. Correlation ids carry a random per-transport prefix
// so two servers on one broker do not take each other's answers.
//
// A broker queues a bounded number of messages per client and drops the rest
// silently; every answer goes to the server's one client, so Transport keeps
// at most TransportOptions.MaxInFlight calls outstanding (DefaultMaxInFlight,
// which fits the shipped Mosquitto configuration). With the embedded broker in
// the same process, NewInlineTransport avoids the queue altogether.
//
// paho runs about a dozen goroutines per client: simulate large fleets with a
// leaner client (package devicesim), not with Serve.
package mqtt
