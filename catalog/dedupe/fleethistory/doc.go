// Package fleethistory generates a synthetic, deterministic history of daily
// settings backups of a device fleet, for the dedupe benchmarks and for
// comparing Fleetvault with other backup tools on the same data.
//
// # Basics
//
// The fleet has about twenty device types (thermostats, climate controllers,
// lighting, locks, irrigation, EV chargers...), each with a handful of
// regional profiles ("North", "South", ...). As in a fleet provisioned by
// group restore, most devices carry their profile's settings exactly; a share
// of them (Config.Custom) start with a few local edits. Every day a share of
// the devices (Config.Change) changes a few settings (a setpoint, a schedule
// time, a flag, a name) and keeps the change. Settings documents are
// realistic maps of schedules, setpoints, names and arrays, a few hundred
// bytes to a few KiB of deterministic CBOR (agent.EncodeSettings).
//
// The same Config always gives the same history, byte for byte:
//
//	h, err := fleethistory.New(fleethistory.Config{Devices: 10000, Days: 30, Change: 0.01})
//	for day := range h.Days() {
//		err := h.Day(day, func(r fleethistory.Record) error { ... })
//	}
//
// WriteFiles writes the history as files, one directory per day and one file
// per device, for tools that back up directories.
//
// # Caveats
//
// Days must be generated in order (Day keeps the fleet's state); a Record's
// Settings may be shared with other records and must not be modified.
package fleethistory
