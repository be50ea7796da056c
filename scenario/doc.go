// Package scenario sets up a whole Fleetvault world in one process: a fresh
// installation, the server with its embedded broker, a simulated fleet
// provisioned into the resource database, and the reference groups backed up.
// It then checks a job's outcomes against the simulated devices' ground truth.
//
// `fleetvault demo`, `fleetvault bench restore` and the fleet tests use it, so
// what the demo shows is what the tests check.
package scenario
