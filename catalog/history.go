package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
)

// The history of job outcomes (docs/spec/catalog.md, "History"): one
// record per device, day (UTC) and kind of job, kept apart from the
// backups and with its own retention, so a year of reports survives
// backups kept six months.
var (
	// bktHistory: "YYYY-MM-DD" NUL kind NUL device -> HistoryRecord. Day
	// first, so a period is one range and pruning deletes from the front.
	bktHistory = []byte("history")
	// bktHistoryDays: "YYYY-MM-DD" NUL kind -> HistoryRecord without a
	// device: the sum over every device of that day, kept with the
	// per-device records, so the statistics of a whole installation read
	// two records a day instead of one per device.
	bktHistoryDays = []byte("history-days")
	// bktSettings: setting name -> JSON value (KeyHistoryRetention).
	bktSettings = []byte("settings")
)

// The kinds of job the history counts (HistoryRecord.Kind).
const (
	HistoryBackup  = "backup"
	HistoryRestore = "restore"
)

// keyHistoryRetention is the setting holding the history's retention in
// days.
const keyHistoryRetention = "history_retention_days"

// DefaultHistoryRetention is the history's retention, in days, until
// SetHistoryRetention changes it.
const DefaultHistoryRetention = 400

// DayLayout is how the history writes a day.
const DayLayout = "2006-01-02"

// HistoryRecord is what one device's jobs of one kind did on one day (UTC).
// RecordHistory adds deltas to it.
type HistoryRecord struct {
	Day       string `json:"day"` // YYYY-MM-DD, UTC
	Kind      string `json:"kind"`
	Device    string `json:"device"`
	Attempts  int    `json:"attempts"`  // devices attempted (final outcome, not skipped)
	Successes int    `json:"successes"` // backed up, or restored and verified
	Failures  int    `json:"failures"`  // every other outcome
	Bytes     int64  `json:"bytes,omitempty"`
	// RestoreMSSum and RestoreMSMax are restore durations in milliseconds:
	// from the job's start to the device's outcome.
	RestoreMSSum int64 `json:"restore_ms_sum,omitempty"`
	RestoreMSMax int64 `json:"restore_ms_max,omitempty"`
	RPOMisses    int   `json:"rpo_misses,omitempty"`
}

func historyKey(day, kind, device string) []byte {
	return []byte(day + "\x00" + kind + "\x00" + device)
}

func (h HistoryRecord) validate() error {
	if _, err := time.Parse(DayLayout, h.Day); err != nil {
		return fmt.Errorf("catalog: history of %s: %w: day %q is not YYYY-MM-DD", h.Device, ErrInvalid, h.Day)
	}
	if h.Kind != HistoryBackup && h.Kind != HistoryRestore {
		return fmt.Errorf("catalog: history of %s on %s: %w: kind %q is not %s or %s", h.Device, h.Day, ErrInvalid, h.Kind, HistoryBackup, HistoryRestore)
	}
	if h.Attempts < 0 || h.Successes < 0 || h.Failures < 0 || h.Bytes < 0 || h.RestoreMSSum < 0 || h.RestoreMSMax < 0 || h.RPOMisses < 0 {
		return fmt.Errorf("catalog: history of %s on %s: %w: negative count", h.Device, h.Day, ErrInvalid)
	}
	return checkName("device id", h.Device)
}

// RecordHistory adds each delta to the record of its day, kind and device
// (counts and sums add up, the maximum is kept), in one transaction.
func (c *Catalog) RecordHistory(deltas []HistoryRecord) error {
	if err := c.writable(); err != nil {
		return err
	}
	for _, d := range deltas {
		if err := d.validate(); err != nil {
			return err
		}
	}
	return update(c.res, "catalog: record history", func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		totals := map[string]*HistoryRecord{} // day NUL kind
		for _, d := range deltas {
			if err := addHistory(recs, bktHistory, historyKey(d.Day, d.Kind, d.Device), d); err != nil {
				return err
			}
			tk := d.Day + "\x00" + d.Kind
			if totals[tk] == nil {
				totals[tk] = &HistoryRecord{Day: d.Day, Kind: d.Kind}
			}
			totals[tk].add(d)
		}
		for k, t := range totals {
			if err := addHistory(recs, bktHistoryDays, []byte(k), *t); err != nil {
				return err
			}
		}
		return nil
	})
}

// addHistory adds d to the record under k in bkt.
func addHistory(recs records, bkt, k []byte, d HistoryRecord) error {
	var h HistoryRecord
	if _, err := recs.get(bkt, k, &h); err != nil {
		return err
	}
	h.Day, h.Kind, h.Device = d.Day, d.Kind, d.Device
	h.add(d)
	return recs.put(bkt, k, h)
}

// add sums d's counts into h and keeps the larger maximum.
func (h *HistoryRecord) add(d HistoryRecord) {
	h.Attempts += d.Attempts
	h.Successes += d.Successes
	h.Failures += d.Failures
	h.Bytes += d.Bytes
	h.RestoreMSSum += d.RestoreMSSum
	h.RestoreMSMax = max(h.RestoreMSMax, d.RestoreMSMax)
	h.RPOMisses += d.RPOMisses
}

// History calls fn for every history record from day since to day until
// (both included, UTC; a zero time is open), in day order.
func (c *Catalog) History(since, until time.Time, fn func(HistoryRecord) error) error {
	return c.HistoryOf(since, until, nil, fn)
}

// HistoryOf is History for the devices in devices only (nil: every
// device); the others' records are skipped by their keys, unread.
func (c *Catalog) HistoryOf(since, until time.Time, devices map[string]bool, fn func(HistoryRecord) error) error {
	return c.scanHistory(bktHistory, since, until, devices, fn)
}

// HistoryTotals calls fn for each day's sums over every device (Device
// ""), one record per day and kind, from day since to day until.
func (c *Catalog) HistoryTotals(since, until time.Time, fn func(HistoryRecord) error) error {
	return c.scanHistory(bktHistoryDays, since, until, nil, fn)
}

func (c *Catalog) scanHistory(bkt []byte, since, until time.Time, devices map[string]bool, fn func(HistoryRecord) error) error {
	from := []byte{}
	if !since.IsZero() {
		from = []byte(since.UTC().Format(DayLayout))
	}
	var last []byte
	if !until.IsZero() {
		last = []byte(until.UTC().Format(DayLayout) + "\x01") // after every key of that day
	}
	return view(c.res, "catalog: history", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bkt)
		if b == nil {
			return nil
		}
		recs := c.resRecords(tx)
		cur := b.Cursor()
		for k, v := cur.Seek(from); k != nil && (last == nil || bytes.Compare(k, last) < 0); k, v = cur.Next() {
			if devices != nil {
				if i := bytes.LastIndexByte(k, 0); i < 0 || !devices[string(k[i+1:])] {
					continue
				}
			}
			var h HistoryRecord
			if err := recs.decode(bkt, k, v, &h); err != nil {
				return err
			}
			if err := fn(h); err != nil {
				return err
			}
		}
		return nil
	})
}

// PruneHistory deletes the history of the days before day before (UTC)
// and returns how many records went.
func (c *Catalog) PruneHistory(before time.Time) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	limit := []byte(before.UTC().Format(DayLayout))
	n := 0
	err := update(c.res, "catalog: prune history", func(tx *bbolt.Tx) error {
		for _, bkt := range [][]byte{bktHistory, bktHistoryDays} {
			b := tx.Bucket(bkt)
			cur := b.Cursor()
			for k, _ := cur.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = cur.First() {
				if err := b.Delete(k); err != nil {
					return err
				}
				if bytes.Equal(bkt, bktHistory) { // count the per-device records
					n++
				}
			}
		}
		return nil
	})
	return n, err
}

// HistoryRetention returns how many days of history are kept.
func (c *Catalog) HistoryRetention() (int, error) {
	days := DefaultHistoryRetention
	err := view(c.res, "catalog: history retention", func(tx *bbolt.Tx) error {
		var v json.RawMessage
		found, err := c.resRecords(tx).get(bktSettings, []byte(keyHistoryRetention), &v)
		if err != nil || !found {
			return err
		}
		if days, err = strconv.Atoi(string(v)); err != nil || days < 1 {
			return fmt.Errorf("catalog: setting %s: %w: %s is not a number of days", keyHistoryRetention, ErrCorrupt, v)
		}
		return nil
	})
	return days, err
}

// SetHistoryRetention sets how many days of history are kept (at least 1).
func (c *Catalog) SetHistoryRetention(days int) error {
	if err := c.writable(); err != nil {
		return err
	}
	if days < 1 {
		return fmt.Errorf("catalog: history retention: %w: %d days; keep at least 1", ErrInvalid, days)
	}
	return update(c.res, "catalog: set history retention", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).put(bktSettings, []byte(keyHistoryRetention), days)
	})
}

// quickDecode reads the JSON encoding/json writes for a HistoryRecord: one
// object of string fields without escapes and non-negative integers, no
// spaces. Anything else is left to encoding/json.
func (h *HistoryRecord) quickDecode(b []byte) bool {
	var r HistoryRecord
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	b = b[1 : len(b)-1]
	for len(b) > 0 {
		name, rest, ok := quickString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		b = rest[1:]
		switch name {
		case "day", "kind", "device":
			var v string
			if v, b, ok = quickString(b); !ok {
				return false
			}
			*map[string]*string{"day": &r.Day, "kind": &r.Kind, "device": &r.Device}[name] = v
		default:
			var n int64
			if n, b, ok = quickInt(b); !ok || !r.setCount(name, n) {
				return false
			}
		}
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	*h = r
	return true
}

func (r *HistoryRecord) setCount(name string, n int64) bool {
	small := func(p *int) bool { *p = int(n); return int64(int(n)) == n }
	switch name {
	case "attempts":
		return small(&r.Attempts)
	case "successes":
		return small(&r.Successes)
	case "failures":
		return small(&r.Failures)
	case "rpo_misses":
		return small(&r.RPOMisses)
	case "bytes":
		r.Bytes = n
	case "restore_ms_sum":
		r.RestoreMSSum = n
	case "restore_ms_max":
		r.RestoreMSMax = n
	default:
		return false
	}
	return true
}

// quickString reads a JSON string of printable ASCII without escapes.
func quickString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", nil, false
		}
	}
	return "", nil, false
}

// quickInt reads a non-negative JSON integer of at most 18 digits.
func quickInt(b []byte) (int64, []byte, bool) {
	i := 0
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 18 {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 || (i > 1 && b[0] == '0') || (i < len(b) && b[i] != ',') {
		return 0, nil, false
	}
	return n, b[i:], true
}
