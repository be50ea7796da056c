package catalogbench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Config sizes the benchmark. Zero fields take the defaults noted.
type Config struct {
	Records int    // pieces in the catalog; default 1,000,000
	Clients int    // distinct clients; default Records/100 (100 backups each)
	Groups  int    // backup groups; default Clients/10 (10 clients each)
	Models  int    // distinct values of the "model" tag; default 20
	Batch   int    // pieces per Ingest (one commit); default 10,000
	Queries int    // timed queries of each kind; default 10,000
	Limit   int    // Limit of the tag query; default 10
	Dir     string // where to build it; default a temporary directory, removed after
	Seed    uint64
}

func (c *Config) defaults() {
	if c.Records <= 0 {
		c.Records = 1_000_000
	}
	if c.Clients <= 0 {
		c.Clients = max(1, c.Records/100)
	}
	if c.Groups <= 0 {
		c.Groups = max(1, c.Clients/10)
	}
	if c.Models <= 0 {
		c.Models = 20
	}
	if c.Batch <= 0 {
		c.Batch = 10_000
	}
	if c.Queries <= 0 {
		c.Queries = 10_000
	}
	if c.Limit <= 0 {
		c.Limit = 10
	}
}

// Latency summarises one kind of query, in microseconds.
type Latency struct {
	P50 float64 `json:"p50_us"`
	P99 float64 `json:"p99_us"`
	Max float64 `json:"max_us"`
	Avg float64 `json:"avg_results"` // results per query
}

// Result is what Run measured.
type Result struct {
	Records       int     `json:"records"`
	Clients       int     `json:"clients"`
	Groups        int     `json:"groups"`
	Batch         int     `json:"batch"`
	IngestSeconds float64 `json:"ingest_seconds"`
	IngestPerS    float64 `json:"ingest_records_per_s"`
	FileBytes     int64   `json:"file_bytes"`
	OpenMillis    float64 `json:"open_ms"`
	Latest        Latency `json:"latest"`       // Latest(client)
	TagInGroup    Latency `json:"tag_in_group"` // Pieces{Group, TagKey, TagValue, Limit}
	Candidates    Latency `json:"candidates"`   // Candidates(group)
	Queries       int     `json:"queries"`      // per kind
}

// Run builds the catalog and measures it.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Result, error) {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{Records: cfg.Records, Clients: cfg.Clients, Groups: cfg.Groups, Batch: cfg.Batch, Queries: cfg.Queries}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "fleetvault-bench-catalog-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	mbr, err := catalog.Init(filepath.Join(dir, "install"), catalog.InitOptions{Server: "127.0.0.1"})
	if err != nil {
		return res, err
	}
	if err := build(ctx, mbr, cfg, &res, log); err != nil {
		return res, err
	}
	start := time.Now()
	c, err := catalog.Open(mbr, catalog.Options{Logger: log})
	if err != nil {
		return res, err
	}
	res.OpenMillis = float64(time.Since(start).Microseconds()) / 1000
	defer c.Close()
	if st, err := os.Stat(filepath.Join(filepath.Dir(mbr), c.MBR().Catalog)); err == nil {
		res.FileBytes = st.Size()
	}
	return res, measure(c, cfg, &res)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func piece(cfg Config, i int) catalog.NewPiece {
	client := i % cfg.Clients
	round := i / cfg.Clients
	group := client % cfg.Groups
	// Within a group, clients have different models, as reference devices do.
	model := (client / cfg.Groups) % cfg.Models
	zone := "North"
	if group%2 == 1 {
		zone = "South"
	}
	return catalog.NewPiece{
		Client: fmt.Sprintf("dev%07d", client), Name: "settings", Type: "settings/cbor", Owner: "facilities",
		Location: "catalog.db", Group: fmt.Sprintf("group%05d", group), Job: fmt.Sprintf("backup-%d", round),
		Time: t0.Add(time.Duration(round)*time.Hour + time.Duration(client)*time.Millisecond),
		Tag: tagmatch.Tag{{Key: tagmatch.KeyManufacturer, Value: "Acme"}, {Key: tagmatch.KeyModel, Value: fmt.Sprintf("T%02d", model)},
			{Key: tagmatch.KeyFirmware, Value: "1.4.2"}, {Key: tagmatch.KeyZone, Value: zone}},
		// A few settings variants per model: what a real fleet's backups dedupe to.
		Content: fmt.Appendf(nil, `{"model":"T%02d","zone":%q,"setpoint":%d,"schedule":"weekday-7-22","fan":"auto"}`, model, zone, 18+round%5),
	}
}

func build(ctx context.Context, mbr string, cfg Config, res *Result, log *slog.Logger) error {
	c, err := catalog.Open(mbr, catalog.Options{Logger: log})
	if err != nil {
		return err
	}
	start := time.Now()
	batch := make([]catalog.NewPiece, 0, cfg.Batch)
	for i := 0; i < cfg.Records; i++ {
		batch = append(batch, piece(cfg, i))
		if len(batch) == cfg.Batch || i == cfg.Records-1 {
			if _, err := c.Ingest(ctx, batch); err != nil {
				c.Close()
				return err
			}
			batch = batch[:0]
			if (i+1)%(10*cfg.Batch) == 0 {
				log.Info("bench catalog: ingesting", "records", i+1, "seconds", time.Since(start).Seconds())
			}
		}
	}
	res.IngestSeconds = time.Since(start).Seconds()
	res.IngestPerS = float64(cfg.Records) / res.IngestSeconds
	return c.Close()
}

func measure(c *catalog.Catalog, cfg Config, res *Result) error {
	rng := rand.New(rand.NewPCG(cfg.Seed, 42))
	var err error
	if res.Latest, err = timeIt(cfg.Queries, func() (int, error) {
		_, err := c.Latest(fmt.Sprintf("dev%07d", rng.IntN(cfg.Clients)))
		return 1, err
	}); err != nil {
		return err
	}
	if res.TagInGroup, err = timeIt(cfg.Queries, func() (int, error) {
		client := rng.IntN(cfg.Clients) // a group and a model that it holds
		ps, err := c.Pieces(catalog.Query{Group: fmt.Sprintf("group%05d", client%cfg.Groups), TagKey: tagmatch.KeyModel,
			TagValue: fmt.Sprintf("T%02d", (client/cfg.Groups)%cfg.Models), Limit: cfg.Limit})
		if err == nil && len(ps) == 0 {
			err = fmt.Errorf("bench catalog: tag query found nothing")
		}
		return len(ps), err
	}); err != nil {
		return err
	}
	res.Candidates, err = timeIt(cfg.Queries, func() (int, error) {
		ps, err := c.Candidates(fmt.Sprintf("group%05d", rng.IntN(cfg.Groups)))
		return len(ps), err
	})
	return err
}

func timeIt(n int, fn func() (int, error)) (Latency, error) {
	ds := make([]time.Duration, n)
	total := 0
	for i := range ds {
		start := time.Now()
		got, err := fn()
		ds[i] = time.Since(start)
		if err != nil {
			return Latency{}, err
		}
		total += got
	}
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	return Latency{P50: us(ds[n/2]), P99: us(ds[n*99/100]), Max: us(ds[n-1]), Avg: float64(total) / float64(n)}, nil
}
