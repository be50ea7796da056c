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
)

// benchDedupeOptions are the flags of bench dedupe.
type benchDedupeOptions struct {
	cfg        fleethistory.Config
	batch      int
	mode       string // "catalog": catalog.Ingest; "store": the dedupe store alone
	dir        string
	writeFiles string
	json       bool
}

// benchDedupeResult is what bench dedupe prints.
type benchDedupeResult struct {
	Mode         string  `json:"mode"`
	Devices      int     `json:"devices"`
	Days         int     `json:"days"`
	Change       float64 `json:"change"`
	Batch        int     `json:"batch"`
	Records      int64   `json:"records"`
	RawBytes     int64   `json:"raw_bytes"`    // settings bytes ingested
	StoredBytes  int64   `json:"stored_bytes"` // object and chunk records: the stored content
	Ratio        float64 `json:"ratio"`        // raw_bytes / stored_bytes
	Objects      int64   `json:"objects"`
	Chunks       int64   `json:"chunks"`
	Seconds      float64 `json:"seconds"` // time spent ingesting (generation excluded)
	RecordsPerS  float64 `json:"records_per_s"`
	FileBytes    int64   `json:"file_bytes"` // size of the bbolt file holding records and content
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
(bench/restic-compare.sh).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := benchDedupeOptions{
				cfg: fleethistory.Config{
					Devices: a.v.GetInt("devices"), Days: a.v.GetInt("days"), Change: a.v.GetFloat64("change"),
					Custom: a.v.GetFloat64("custom"), Seed: a.v.GetUint64("seed"),
				},
				batch: a.v.GetInt("batch"), mode: a.v.GetString("mode"), dir: a.v.GetString("dir"),
				writeFiles: a.v.GetString("write-files"), json: a.v.GetBool("json"),
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
	return c
}

func runBenchDedupe(ctx context.Context, a *app, o benchDedupeOptions) error {
	if o.batch <= 0 {
		return usageError{fmt.Errorf("--batch must be positive, have %d", o.batch)}
	}
	if o.mode != "catalog" && o.mode != "store" {
		return usageError{fmt.Errorf("--mode must be catalog or store, have %q", o.mode)}
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
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fleetvault-bench-dedupe-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ing, err := openIngester(o.mode, dir)
	if err != nil {
		return err
	}
	res, err := ingestHistory(ctx, h, ing, o.batch)
	if cerr := ing.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := ing.measure(&res); err != nil {
		return err
	}
	res.Mode, res.Devices, res.Days, res.Change, res.Batch = o.mode, o.cfg.Devices, o.cfg.Days, o.cfg.Change, o.batch
	if res.StoredBytes > 0 {
		res.Ratio = float64(res.RawBytes) / float64(res.StoredBytes)
	}
	if res.Seconds > 0 {
		res.RecordsPerS = float64(res.Records) / res.Seconds
	}
	if o.json {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "%d records (%d devices x %d days, %.1f%% changing daily) via %s in %.2fs: %.0f records/s\n",
		res.Records, res.Devices, res.Days, 100*res.Change, res.Mode, res.Seconds, res.RecordsPerS)
	fmt.Fprintf(a.stdout, "raw %d bytes, stored %d bytes (%d objects, %d chunks): ratio %.1f; file %d bytes\n",
		res.RawBytes, res.StoredBytes, res.Objects, res.Chunks, res.Ratio, res.FileBytes)
	return nil
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

func openIngester(mode, dir string) (ingester, error) {
	if mode == "store" {
		path := filepath.Join(dir, "dedupe.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			return nil, fmt.Errorf("bench dedupe: open %s: %w", path, err)
		}
		s := dedupe.New(dedupe.Options{})
		if err := db.Update(s.Init); err != nil {
			db.Close()
			return nil, err
		}
		return &storeIngester{db: db, store: s, path: path}, nil
	}
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		return nil, err
	}
	c, err := catalog.Open(mbr, catalog.Options{})
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
