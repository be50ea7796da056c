// Package catalogbench measures the catalog at scale: it builds a catalog of
// many records with batched ingest, then times the queries a group restore
// and the server make on it (latest backup of a client, pieces with a tag
// within a backup group, newest piece per client of a group) and the time to
// open it. `fleetvault bench catalog` runs it; figures are recorded in
// docs/BENCHMARKS.md.
package catalogbench
