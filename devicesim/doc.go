// Package devicesim runs simulated fleets of devices for the demo, the tests
// and users' CI: thousands of MQTT or CoAP devices that speak the media-agent
// protocol (package agent), each with a tag, settings and, if asked, faults,
// and with a ground-truth log of every write they received.
//
// # Fleet files
//
// A fleet is described in YAML (examples/fleets/ has the shipped ones):
//
//	name: model-house
//	seed: 7                          # default seed (Options.Seed overrides)
//	types:
//	  - name: climate                # device type
//	    transport: mqtt              # mqtt (default) or coap
//	    tag:                         # ordered; each value a template or a choice
//	      manufacturer: Acme Corp.
//	      product: climate control
//	      model: xyz
//	      firmware: {choice: {"2.1.0": 9, "2.0.3": 1}}
//	      zone: "{zone}"             # a site variable (see groups)
//	    settings:
//	      factory:                   # what a new device holds
//	        setpoint_c: 20
//	        mode: auto
//	        fan: {$choice: [low, auto]}
//	        offset_c: {$uniform: [-0.5, 0.5], $decimals: 2}
//	        name: "{id}"
//	      reference:                 # tuned settings, for reference groups only
//	        - when: {zone: North}    # applies when the tag has these values
//	          set: {setpoint_c: 21.5}
//	    faults:                      # shares of this type's devices (0.1 or "10%")
//	      offline: 2%                # never come online
//	      late: {share: 5%, after: {uniform: [1s, 5s]}}   # come online later
//	      latency: {exponential: 2ms, max: 50ms}           # every answer's delay
//	      slow: {share: 5%, latency: 30s}                  # answer after a timeout
//	      drop: 1%                   # ignore requests
//	      reject: 1%                 # refuse settings (agent.ErrRejected)
//	      corrupt: 1%                # store a corrupted copy: the answered hash differs
//	      reboot: {share: 1%, down: 2s, applied: 0.5}      # reboot on the first write
//	      nocaps: 1%                 # announce no capabilities: must never be written
//	      readonly: 1%               # announce read-tag, read-settings only: never written
//	      wrongid: 1%                # answer as "<id>-impostor": must never be restored
//	groups:
//	  - name: model-house-north
//	    reference: true              # devices hold reference settings; no faults
//	    site: model-north            # site name (default {group}-{n:04})
//	    vars: {zone: North}
//	    devices: [{type: climate}, {type: lighting, count: 2}]
//	  - name: new-homes
//	    sites: 1000
//	    site: "home{n:04}"
//	    vars: {zone: {choice: {North: 3, South: 2}}}      # drawn once per site
//	    devices:
//	      - {type: climate}
//	      - {type: hub-unknown, share: 2%}                 # in 2% of homes only
//
// Templates use {name} or {name:04} (zero-padded): built-ins site, n (site
// number), i (device number within the site), group, type and id, the group's
// vars, and in settings also the device's tag keys. A device's id is
// {site}-{type}, or {site}-{type}-{i} when a site has several; a member's id
// template overrides it. Distributions of durations are "5ms" (fixed),
// {fixed: 5ms}, {uniform: [1ms, 10ms]} or {exponential: 20ms, max: 1s}.
//
// Each fault goes to exactly round(share × devices of that type in groups
// with faults on) devices, chosen with the seed; tags, settings, faults and
// secrets come from separate seeded streams, so the same file and seed give
// the same fleet. Errors name the file, the line when known, the path (such as
// types[2].faults.offline) and what was expected.
//
// # Running a fleet
//
// New expands a Spec into devices without touching the network, so a caller
// can provision its resource database and broker credentials from
// Fleet.Devices first; Fleet.Start connects them. Start does both.
//
// MQTT devices use a lean MQTT client (package devicesim/leanmqtt): one
// connection and one reader goroutine per device, so 10,000 devices fit in
// well under 1 GiB. Device ids are MQTT client ids and usernames, secrets
// passwords; requests arrive on fleetvault/v1/<id>/req and answers go to
// fleetvault/v1/<id>/res, QoS 1; a device announces itself with
// agent.Handler.Hello on connect.
//
// # Ground truth
//
// Fleet.Device(id).Log lists every write a device received: job, hash sent,
// hash answered, whether it was applied or corrupted, and what happened.
// Tests compare a restore's report with it.
//
// # Caveats
//
// Secrets default to DefaultSecret(seed), and CoAP devices' DTLS keys to
// DefaultCoAPKey(seed): reproducible, therefore not secret. CoAP devices
// serve coaps:// (DTLS with their key) and refuse plain CoAP unless
// Options.InsecureCoAP; their keys are in DeviceInfo.CoAPKey and in the
// device list (coap_key), which is how a server learns them.
// Reboots happen once per device, on its first write.
//
// CoAP devices are served by agent/coap's device server, which calls the
// Handler itself; their faults therefore act inside the Device methods (the
// first call of a request waits out the latency; a reboot closes the socket
// from Apply and rebinds the same port later; a dropping device never reads
// its socket), and their WriteRecords carry no job id, which the Device is
// not told. A rebooted CoAP device usually gets the write again from the
// transport's retransmission once it is back.
//
// The simulator speaks plain MQTT over TCP (mqtt:// or tcp://), not TLS or
// WebSocket. One process needs a descriptor per MQTT device (two with an
// in-process broker) and per CoAP device.
package devicesim
