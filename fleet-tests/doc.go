// Package fleettests holds end-to-end tests of whole simulated fleets: a real
// installation (catalog, journal, broker, transports, engine), a fleet of
// simulated MQTT and CoAP devices (package devicesim) and group restores run
// on it, each checked against the ground truth of every device.
//
// # What every test checks
//
// After a job ends, scenario.Check compares the engine's report with what each
// simulated device was sent and holds: no device written settings whose tag
// matched no backup (or two equally); nothing but the oracle's settings sent to
// any device; no device sent two different settings by one job; every device
// reported restored holds what it should. Each test also states how many
// devices must end in each state, and which ones, from the faults the fleet
// file gave them.
//
// # Scenarios
//
//   - the article's builder: a model house (North and South) restored to new
//     homes, with unknown hubs, late joiners and devices that never come up;
//   - offices worldwide, matched by region and climate;
//   - faulty fleets: offline, slow, corrupt acknowledgements, refusals and
//     reboots during a write;
//   - rollout control: abort thresholds, canary waves, dry run, cancel,
//     pause, undo;
//   - a model house retuned and backed up again: the newest backup wins;
//   - a server killed mid-job (a child process, SIGKILL), resumed, undone;
//   - ten servers killed mid-backup and resumed: no device two pieces from one job;
//   - a security panel's tag claimed by a device registered as a thermometer
//     (MQTT and CoAP): tag-mismatch, nothing written or stored;
//   - a backup and a restore on a tmpfs filled mid-job: paused with an error,
//     finished once space is freed (needs root: a child process in its own
//     mount namespace; skipped otherwise);
//   - an MQTT broker restarted mid-job;
//   - CoAP fleets and fleets mixing MQTT and CoAP;
//   - a run through a real Mosquitto broker.
//
// Fleet files live in testdata/ beside the shipped ones in examples/fleets.
//
// # Caveats
//
// Under -short the fleets are small (150 homes) and the slowest scenarios are
// skipped; without -short the builder's scenario runs 1,000 homes. Tests that
// need Mosquitto skip when it is not installed (make deps installs it). Set
// FLEETTESTS_LOG=debug (or info, warn) to see the server's and fleet's logs.
// TestScenarioTruthSeesCoAPWrites shows a known gap in the shared ground truth
// (CoAP writes are logged without their job id) and runs only with
// FLEETTESTS_KNOWN_BUGS=1; the other tests attribute CoAP writes by time.
package fleettests
