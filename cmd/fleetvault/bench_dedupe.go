package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/dedupe/fleethistory"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// benchDedupeOptions are the flags of bench dedupe.
type benchDedupeOptions struct {
	cfg        fleethistory.Config
	batch      int
	mode       string // "catalog": catalog.Ingest; "store": the dedupe store alone
	dir        string
	writeFiles string
	json       bool
	encryption string // "on", "off" or "both"
}

// benchDedupeResult is what bench dedupe prints.
type benchDedupeResult struct {
	Mode        string  `json:"mode"`
	Encrypted   bool    `json:"encrypted"` // content sealed under a repository key, as init makes it
	Devices     int     `json:"devices"`
	Days        int     `json:"days"`
	Change      float64 `json:"change"`
	Batch       int     `json:"batch"`
	Records     int64   `json:"records"`
	RawBytes    int64   `json:"raw_bytes"`    // settings bytes ingested
	StoredBytes int64   `json:"stored_bytes"` // object and chunk records: the stored content
	Ratio       float64 `json:"ratio"`        // raw_bytes / stored_bytes
	Objects     int64   `json:"objects"`
	Chunks      int64   `json:"chunks"`
	Seconds     float64 `json:"seconds"` // time spent ingesting (generation excluded)
	RecordsPerS float64 `json:"records_per_s"`
	FileBytes   int64   `json:"file_bytes"` // size of the bbolt file holding records and content
	// BytesPerRecord is file_bytes over records: what one backup costs in
	// the catalog file, content and indexes included.
	BytesPerRecord float64 `json:"bytes_per_record"`
	// InstallBytes is every file of the installation (catalog, resource
	// database, job journal, MBR): its whole size on disk, as
	// bench/restic-compare.sh compares with restic's whole repository.
	InstallBytes int64   `json:"install_bytes"`
	WallSeconds  float64 `json:"wall_seconds"`
	GenerateSecs float64 `json:"generate_seconds"`
}

func newBenchDedupeCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "dedupe",
		Short: "Ingest a synthetic fleet history and measure dedupe ratio and speed",
		Long: `bench dedupe generates the daily settings backups of a synthetic fleet (about
twenty device types with regional profiles; a share of devices changes a few
settings each day), ingests them through the catalog (or the dedupe store
alone with --mode store), and reports the dedupe ratio (bytes ingested over
bytes stored) and the ingest rate.

With --write-files DIR it writes the same history as files instead (one
directory per day, one file per device), for comparing with other tools
(bench/restic-compare.sh).

--encryption on (the default, as fleetvault init makes installations) seals
the content under a random repository key; off stores it in clear; both runs
the history twice, in clear then encrypted, and reports both and the ratio of
their rates (encrypted_over_clear), so a noisy machine affects both alike.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := benchDedupeOptions{
				cfg: fleethistory.Config{
					Devices: a.v.GetInt("devices"), Days: a.v.GetInt("days"), Change: a.v.GetFloat64("change"),
					Custom: a.v.GetFloat64("custom"), Seed: a.v.GetUint64("seed"),
				},
				batch: a.v.GetInt("batch"), mode: a.v.GetString("mode"), dir: a.v.GetString("dir"),
				writeFiles: a.v.GetString("write-files"), json: a.v.GetBool("json"), encryption: a.v.GetString("encryption"),
			}
			return runBenchDedupe(cmd.Context(), a, o)
		},
	}
	f := c.Flags()
	f.Int("devices", 10000, "devices in the fleet")
	f.Int("days", 30, "daily backups")
	f.Float64("change", 0.01, "share of devices changing a few settings each day")
	f.Float64("custom", 0.1, "share of devices with local edits from the start")
	f.Uint64("seed", 1, "seed of the generated history")
	f.Int("batch", 5000, "pieces per Ingest call (one commit each)")
	f.String("mode", "catalog", "ingest path: catalog (catalog.Ingest) or store (the dedupe store alone)")
	f.String("dir", "", "directory for the installation (default: a temporary directory, removed after)")
	f.String("write-files", "", "write the history as files under this directory instead of ingesting it")
	f.Bool("json", false, "print the result as JSON")
	f.String("encryption", "on", "content encryption: on, off, or both (two runs, compared)")
	return c
}

func runBenchDedupe(ctx context.Context, a *app, o benchDedupeOptions) error {
	if o.batch <= 0 {
		return usageError{fmt.Errorf("--batch must be positive, have %d", o.batch)}
	}
	if o.mode != "catalog" && o.mode != "store" {
		return usageError{fmt.Errorf("--mode must be catalog or store, have %q", o.mode)}
	}
	runs := map[string][]bool{"on": {true}, "off": {false}, "both": {false, true}}[o.encryption]
	if runs == nil {
		return usageError{fmt.Errorf("--encryption must be on, off or both, have %q", o.encryption)}
	}
	h, err := fleethistory.New(o.cfg)
	if err != nil {
		return usageError{err}
	}
	if o.writeFiles != "" {
		start := time.Now()
		files, n, err := h.WriteFiles(o.writeFiles)
		if err != nil {
			return err
		}
		return writeJSON(a.stdout, map[string]any{"dir": o.writeFiles, "files": files, "bytes": n, "seconds": time.Since(start).Seconds()})
	}
	var results []benchDedupeResult
	for i, encrypt := range runs {
		dir := o.dir
		if dir != "" && len(runs) > 1 {
			dir = filepath.Join(dir, fmt.Sprintf("run%d", i))
		}
		if i > 0 { // a history is read once: the next run gets the same one anew
			if h, err = fleethistory.New(o.cfg); err != nil {
				return usageError{err}
			}
		}
		res, err := benchDedupeRun(ctx, h, o, dir, encrypt)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if o.json && len(results) == 1 {
		return writeJSON(a.stdout, results[0])
	}
	var ratio float64
	if len(results) == 2 && results[0].RecordsPerS > 0 {
		ratio = results[1].RecordsPerS / results[0].RecordsPerS
	}
	if o.json {
		return writeJSON(a.stdout, map[string]any{"runs": results, "encrypted_over_clear": ratio})
	}
	for _, res := range results {
		fmt.Fprintf(a.stdout, "%d records (%d devices x %d days, %.1f%% changing daily) via %s, encrypted %v, in %.2fs: %.0f records/s\n",
			res.Records, res.Devices, res.Days, 100*res.Change, res.Mode, res.Encrypted, res.Seconds, res.RecordsPerS)
		fmt.Fprintf(a.stdout, "raw %d bytes, stored %d bytes (%d objects, %d chunks): ratio %.1f; file %d bytes (%.1f per record), installation %d bytes\n",
			res.RawBytes, res.StoredBytes, res.Objects, res.Chunks, res.Ratio, res.FileBytes, res.BytesPerRecord, res.InstallBytes)
	}
	if ratio > 0 {
		fmt.Fprintf(a.stdout, "encrypted rate / clear rate: %.2f\n", ratio)
	}
	return nil
}

// benchDedupeRun ingests the history once into a fresh store in dir (a
// temporary directory when empty).
func benchDedupeRun(ctx context.Context, h *fleethistory.History, o benchDedupeOptions, dir string, encrypt bool) (benchDedupeResult, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "fleetvault-bench-dedupe-"); err != nil {
			return benchDedupeResult{}, err
		}
		defer os.RemoveAll(dir)
	}
	var key *repokey.Key
	if encrypt {
		var err error
		if key, err = repokey.New(); err != nil {
			return benchDedupeResult{}, err
		}
	}
	ing, err := openIngester(o.mode, dir, key)
	if err != nil {
		return benchDedupeResult{}, err
	}
	res, err := ingestHistory(ctx, h, ing, o.batch)
	if cerr := ing.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	if err := ing.measure(&res); err != nil {
		return res, err
	}
	if res.InstallBytes, err = dirFileBytes(dir); err != nil {
		return res, err
	}
	if res.Records > 0 {
		res.BytesPerRecord = float64(res.FileBytes) / float64(res.Records)
	}
	res.Mode, res.Encrypted, res.Devices, res.Days, res.Change, res.Batch = o.mode, encrypt, o.cfg.Devices, o.cfg.Days, o.cfg.Change, o.batch
	if res.StoredBytes > 0 {
		res.Ratio = float64(res.RawBytes) / float64(res.StoredBytes)
	}
	if res.Seconds > 0 {
		res.RecordsPerS = float64(res.Records) / res.Seconds
	}
	return res, nil
}

// ingestHistory feeds every day of h to ing in batches, timing the ingest
// calls only.
func ingestHistory(ctx context.Context, h *fleethistory.History, ing ingester, batch int) (benchDedupeResult, error) {
	var res benchDedupeResult
	var ingest, generate time.Duration
	wall := time.Now()
	recs := make([]fleethistory.Record, 0, batch)
	flush := func() error {
		start := time.Now()
		err := ing.ingest(ctx, recs)
		ingest += time.Since(start)
		recs = recs[:0]
		return err
	}
	for d := range h.Days() {
		start := time.Now()
		err := h.Day(d, func(r fleethistory.Record) error {
			res.Records++
			res.RawBytes += int64(len(r.Settings))
			recs = append(recs, r)
			if len(recs) < batch {
				return nil
			}
			generate += time.Since(start)
			err := flush()
			start = time.Now()
			return err
		})
		generate += time.Since(start)
		if err != nil {
			return res, fmt.Errorf("bench dedupe: day %d: %w", d, err)
		}
	}
	if len(recs) > 0 {
		if err := flush(); err != nil {
			return res, fmt.Errorf("bench dedupe: %w", err)
		}
	}
	res.Seconds, res.GenerateSecs, res.WallSeconds = ingest.Seconds(), generate.Seconds(), time.Since(wall).Seconds()
	return res, nil
}

// ingester is where bench dedupe puts the records.
type ingester interface {
	ingest(ctx context.Context, recs []fleethistory.Record) error
	close() error
	measure(res *benchDedupeResult) error // after close: stored bytes, objects, file size
}

var (
	_ ingester = (*catalogIngester)(nil)
	_ ingester = (*storeIngester)(nil)
)

// openIngester opens a fresh store in dir; key, when set, encrypts it.
func openIngester(mode, dir string, key *repokey.Key) (ingester, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if mode == "store" {
		path := filepath.Join(dir, "dedupe.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			return nil, fmt.Errorf("bench dedupe: open %s: %w", path, err)
		}
		opts := dedupe.Options{}
		if key != nil {
			opts.Cipher = key
		}
		s := dedupe.New(opts)
		if err := db.Update(s.Init); err != nil {
			db.Close()
			return nil, err
		}
		return &storeIngester{db: db, store: s, path: path}, nil
	}
	io := catalog.InitOptions{}
	if key != nil {
		io.Key, io.KeyDir = key, filepath.Join(dir, "keys") // no key files: the bench holds the key
	}
	mbr, err := catalog.Init(dir, io)
	if err != nil {
		return nil, err
	}
	c, err := catalog.Open(mbr, catalog.Options{Key: key})
	if err != nil {
		return nil, err
	}
	m := c.MBR()
	return &catalogIngester{c: c, path: m.Path(m.Catalog)}, nil
}

// catalogIngester ingests through the full catalog path: records, indexes and content.
type catalogIngester struct {
	c    *catalog.Catalog
	path string
}

func (ci *catalogIngester) ingest(ctx context.Context, recs []fleethistory.Record) error {
	pieces := make([]catalog.NewPiece, len(recs))
	for i, r := range recs {
		pieces[i] = catalog.NewPiece{
			Client: r.Device, Name: "settings", Type: r.Type, Group: "Daily Device Backup",
			Time: r.Time, Tag: r.Tag, Content: r.Settings,
		}
	}
	_, err := ci.c.Ingest(ctx, pieces)
	return err
}

func (ci *catalogIngester) close() error { return ci.c.Close() }

func (ci *catalogIngester) measure(res *benchDedupeResult) error { return measureFile(ci.path, res) }

// storeIngester puts content into the dedupe store alone, one transaction per batch.
type storeIngester struct {
	db    *bbolt.DB
	store *dedupe.Store
	path  string
}

func (si *storeIngester) ingest(_ context.Context, recs []fleethistory.Record) error {
	return si.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range recs {
			if _, _, err := si.store.Put(tx, r.Settings); err != nil {
				return fmt.Errorf("%s day %d: %w", r.Device, r.Day, err)
			}
		}
		return nil
	})
}

func (si *storeIngester) close() error { return si.db.Close() }

func (si *storeIngester) measure(res *benchDedupeResult) error { return measureFile(si.path, res) }

// dirFileBytes sums the sizes of the regular files under dir.
func dirFileBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bench dedupe: size of %s: %w", dir, err)
	}
	return n, nil
}

// measureFile reads the dedupe counters and the size of a closed bbolt file.
func measureFile(path string, res *benchDedupeResult) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("bench dedupe: %w", err)
	}
	res.FileBytes = fi.Size()
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("bench dedupe: open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		st, err := dedupe.New(dedupe.Options{}).Stats(tx)
		if err != nil {
			return fmt.Errorf("bench dedupe: %s: %w", path, err)
		}
		if st.References != res.Records {
			return fmt.Errorf("bench dedupe: %s holds %d references, %d records were ingested", path, st.References, res.Records)
		}
		res.StoredBytes, res.Objects, res.Chunks = st.StoredBytes, st.Objects, st.Chunks
		return nil
	})
}
