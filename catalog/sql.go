package catalog

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// writeSQL writes d as portable SQL: the schema, then one INSERT per row,
// in one transaction, parents before children.
func writeSQL(w io.Writer, d dump, content func(func(contentDump) error) error, pieces func(func(pieceDump) error) error) error {
	sw := &sqlWriter{w: bufio.NewWriter(w)}
	sw.raw("-- Fleetvault catalog export: docs/spec/catalog.md. Load with sqlite3 or psql.\n-- " + ExportNotice + "\nBEGIN;\n\n")
	sw.raw(Schema)
	sw.raw("\n")
	sw.insert("fv_meta", []string{"meta_key", "meta_value"}, "format", d.Format)
	sw.insert("fv_meta", []string{"meta_key", "meta_value"}, "version", strconv.Itoa(d.Version))
	for _, k := range sortedKeys(d.MBR) {
		sw.insert("fv_meta", []string{"meta_key", "meta_value"}, "mbr."+k, d.MBR[k])
	}
	for _, dv := range d.Devices {
		sw.insert("devices", []string{"id", "domain", "category", "owner", "catalog_name", "identifier", "password_hash", "role"},
			dv.ID, dv.Domain, dv.Category, dv.Owner, dv.Catalog, dv.Identifier, dv.PasswordHash, dv.Role)
		for _, k := range sortedKeys(dv.Optional) {
			sw.insert("device_optional", []string{"device_id", "opt_key", "opt_value"}, dv.ID, k, dv.Optional[k])
		}
	}
	for _, g := range d.Groups {
		sw.insert("resource_groups", []string{"name", "kind", "domain", "category", "owner", "schedule", "description"},
			g.Name, g.Kind, g.Domain, g.Category, g.Owner, g.Schedule, g.Description)
		for _, k := range sortedKeys(g.Optional) {
			sw.insert("group_optional", []string{"group_name", "opt_key", "opt_value"}, g.Name, k, g.Optional[k])
		}
		for _, m := range g.Members {
			sw.insert("group_members", []string{"group_name", "member_id"}, g.Name, m)
		}
	}
	for i, r := range d.Replication {
		sw.insert("replication", []string{"ordinal", "local_host", "local_port", "remote_host", "remote_port"},
			int64(i), r.LocalHost, int64(r.LocalPort), r.RemoteHost, int64(r.RemotePort))
	}
	for _, r := range d.KeepRules {
		kind, name := "client", r.Client
		if r.Client == "" {
			kind, name = "group", r.Group
		}
		sw.insert("keep_rules", []string{"scope_kind", "scope_name", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"},
			kind, name, int64(r.Last), int64(r.Hourly), int64(r.Daily), int64(r.Weekly), int64(r.Monthly), int64(r.Yearly))
	}
	writeScheduleRows(sw, d.Schedules)
	err := content(func(cd contentDump) error {
		sw.insert("content", []string{"content_hash", "size", "data_base64"}, cd.Ref, int64(len(cd.Data)), base64.StdEncoding.EncodeToString(cd.Data))
		return sw.err
	})
	if err == nil {
		err = pieces(func(p pieceDump) error { sw.piece(p); return sw.err })
	}
	if err != nil {
		return fmt.Errorf("catalog: export sql: %w", err)
	}
	for _, e := range d.Restores {
		sw.insert("restores", []string{"id", "device_id", "piece_id", "content_hash", "job_id", "restore_time", "outcome", "detail"},
			e.ID, e.Device, e.PieceID, e.Ref, e.Job, fmtTime(e.Time), e.Outcome, e.Detail)
	}
	writeCertificationRows(sw, d) // after the pieces they refer to
	sw.raw("\nCOMMIT;\n")
	if sw.err != nil {
		return fmt.Errorf("catalog: export sql: %w", sw.err)
	}
	if err := sw.w.Flush(); err != nil {
		return fmt.Errorf("catalog: export sql: %w", err)
	}
	return nil
}

func (sw *sqlWriter) piece(p pieceDump) {
	var expiry any
	if p.Expiry != "" {
		expiry = p.Expiry
	}
	sw.insert("pieces", []string{"id", "catalog_name", "client", "piece_name", "piece_type", "piece_owner", "backup_location",
		"backup_time", "expiry_time", "size", "content_hash", "backup_group", "job_id"},
		p.ID, p.Catalog, p.Client, p.Name, p.Type, p.Owner, p.Location, p.Time, expiry, p.Size, p.Ref, p.Group, p.Job)
	for i, a := range p.Tag {
		dk := a.DeviceKey
		if dk == "" {
			dk = a.Key
		}
		sw.insert("piece_tags", []string{"piece_id", "ordinal", "tag_key", "tag_value", "device_key"}, p.ID, int64(i), a.Key, a.Value, dk)
	}
	for _, k := range sortedKeys(p.Optional) {
		sw.insert("piece_optional", []string{"piece_id", "opt_key", "opt_value"}, p.ID, k, p.Optional[k])
	}
}

type sqlWriter struct {
	w   *bufio.Writer
	err error
}

func (s *sqlWriter) raw(text string) {
	if s.err == nil {
		_, s.err = s.w.WriteString(text)
	}
}

// insert writes one row; values are string, int64 or nil (NULL).
func (s *sqlWriter) insert(table string, cols []string, vals ...any) {
	if s.err != nil {
		return
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (")
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v := v.(type) {
		case nil:
			b.WriteString("NULL")
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case string:
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				s.err = fmt.Errorf("%w: %s.%s: %q is not valid UTF-8 text without NUL", ErrInvalid, table, cols[i], v)
				return
			}
			b.WriteString("'" + strings.ReplaceAll(v, "'", "''") + "'")
		}
	}
	b.WriteString(");\n")
	s.raw(b.String())
}

// sqlValue is a literal from an INSERT: a string, an integer or NULL.
type sqlValue struct {
	s     string
	n     int64
	isInt bool
	null  bool
}

type sqlRow struct {
	line int
	vals map[string]sqlValue
}

func (r sqlRow) str(col string) (string, error) {
	v, ok := r.vals[col]
	switch {
	case !ok:
		return "", fmt.Errorf("line %d: %w: column %s missing", r.line, ErrInvalid, col)
	case v.null:
		return "", nil
	case v.isInt:
		return strconv.FormatInt(v.n, 10), nil
	}
	return v.s, nil
}

func (r sqlRow) num(col string) (int64, error) {
	v, ok := r.vals[col]
	if !ok || !v.isInt {
		return 0, fmt.Errorf("line %d: %w: column %s is not an integer", r.line, ErrInvalid, col)
	}
	return v.n, nil
}

// sqlParser reads the subset of SQL that writeSQL writes: INSERT statements
// with literal values; other statements (CREATE, BEGIN, COMMIT) are skipped.
type sqlParser struct {
	src  string
	pos  int
	line int
}

const maxSQLExport = 1 << 31

// parseSQL returns the rows of every INSERT, by table, in order.
func parseSQL(src string) (map[string][]sqlRow, error) {
	p := &sqlParser{src: src, line: 1}
	rows := map[string][]sqlRow{}
	for {
		p.space()
		if p.pos >= len(p.src) {
			return rows, nil
		}
		word := p.word()
		if !strings.EqualFold(word, "INSERT") {
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
			continue
		}
		table, rs, err := p.insert()
		if err != nil {
			return nil, err
		}
		rows[table] = append(rows[table], rs...)
	}
}

func (p *sqlParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: sql line %d: %s", ErrInvalid, p.line, fmt.Sprintf(format, args...))
}

func (p *sqlParser) space() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "--"):
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *sqlParser) word() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *sqlParser) skipStatement() error {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case ';':
			p.pos++
			return nil
		case '\'':
			if _, err := p.str(); err != nil {
				return err
			}
			continue
		case '\n':
			p.line++
		}
		if strings.HasPrefix(p.src[p.pos:], "--") {
			p.space()
			continue
		}
		p.pos++
	}
	return nil
}

func (p *sqlParser) expect(tok string) error {
	p.space()
	if !strings.HasPrefix(p.src[p.pos:], tok) {
		return p.errorf("expected %q", tok)
	}
	p.pos += len(tok)
	return nil
}

func (p *sqlParser) keyword(kw string) error {
	p.space()
	if w := p.word(); !strings.EqualFold(w, kw) {
		return p.errorf("expected %s, found %q", kw, w)
	}
	return nil
}

func (p *sqlParser) insert() (string, []sqlRow, error) {
	if err := p.keyword("INTO"); err != nil {
		return "", nil, err
	}
	p.space()
	table := p.word()
	if table == "" {
		return "", nil, p.errorf("expected a table name")
	}
	if err := p.expect("("); err != nil {
		return "", nil, err
	}
	var cols []string
	for {
		p.space()
		c := p.word()
		if c == "" {
			return "", nil, p.errorf("expected a column name")
		}
		cols = append(cols, c)
		p.space()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if err := p.expect(")"); err != nil {
			return "", nil, err
		}
		break
	}
	if err := p.keyword("VALUES"); err != nil {
		return "", nil, err
	}
	var rows []sqlRow
	for {
		row, err := p.tuple(cols)
		if err != nil {
			return "", nil, fmt.Errorf("table %s: %w", table, err)
		}
		rows = append(rows, row)
		p.space()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		return table, rows, p.expect(";")
	}
}

func (p *sqlParser) tuple(cols []string) (sqlRow, error) {
	row := sqlRow{line: p.line, vals: make(map[string]sqlValue, len(cols))}
	if err := p.expect("("); err != nil {
		return row, err
	}
	for i, col := range cols {
		if i > 0 {
			if err := p.expect(","); err != nil {
				return row, err
			}
		}
		v, err := p.value()
		if err != nil {
			return row, err
		}
		row.vals[col] = v
	}
	return row, p.expect(")")
}

func (p *sqlParser) value() (sqlValue, error) {
	p.space()
	if p.pos >= len(p.src) {
		return sqlValue{}, p.errorf("unexpected end of input")
	}
	if p.src[p.pos] == '\'' {
		s, err := p.str()
		return sqlValue{s: s}, err
	}
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	w := p.word()
	if strings.EqualFold(w, "NULL") && start == p.pos-4 {
		return sqlValue{null: true}, nil
	}
	n, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
	if err != nil {
		return sqlValue{}, p.errorf("bad value %q", p.src[start:p.pos])
	}
	return sqlValue{n: n, isInt: true}, nil
}

// str reads a quoted literal, ” standing for one quote.
func (p *sqlParser) str() (string, error) {
	line := p.line
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '\'' {
			if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
				b.WriteByte('\'')
				p.pos += 2
				continue
			}
			p.pos++
			return b.String(), nil
		}
		if c == '\n' {
			p.line++
		}
		b.WriteByte(c)
		p.pos++
	}
	return "", fmt.Errorf("%w: sql line %d: unterminated string", ErrInvalid, line)
}

// readSQL parses an SQL export back into a dump.
func readSQL(r io.Reader) (dump, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSQLExport))
	if err != nil {
		return dump{}, err
	}
	rows, err := parseSQL(string(data))
	if err != nil {
		return dump{}, err
	}
	return dumpFromRows(rows)
}

var knownTables = []string{"fv_meta", "devices", "device_optional", "resource_groups", "group_optional", "group_members",
	"replication", "keep_rules", "schedules", "content", "pieces", "piece_tags", "piece_optional", "restores",
	"certifications", "certification_policies"}

func dumpFromRows(rows map[string][]sqlRow) (dump, error) {
	var d dump
	for t := range rows {
		if !contains(knownTables, t) {
			return d, fmt.Errorf("%w: unknown table %s", ErrInvalid, t)
		}
	}
	b := &rowBinder{}
	d.MBR = map[string]string{}
	for _, r := range rows["fv_meta"] {
		k, v := b.s(r, "meta_key"), b.s(r, "meta_value")
		switch {
		case k == "format":
			d.Format = v
		case k == "version":
			n, err := strconv.Atoi(v)
			if err != nil {
				return d, fmt.Errorf("line %d: %w: version %q", r.line, ErrInvalid, v)
			}
			d.Version = n
		case strings.HasPrefix(k, "mbr."):
			d.MBR[strings.TrimPrefix(k, "mbr.")] = v
		}
	}
	bindResources(b, rows, &d)
	bindPieces(b, rows, &d)
	for _, r := range rows["restores"] {
		e := RestoreEvent{ID: b.s(r, "id"), Device: b.s(r, "device_id"), PieceID: b.s(r, "piece_id"), Ref: b.s(r, "content_hash"),
			Job: b.s(r, "job_id"), Outcome: b.s(r, "outcome"), Detail: b.s(r, "detail")}
		e.Time = b.t(r, "restore_time")
		d.Restores = append(d.Restores, e)
	}
	return d, b.err
}

// rowBinder reads typed columns, keeping the first error.
type rowBinder struct{ err error }

func (b *rowBinder) s(r sqlRow, col string) string {
	v, err := r.str(col)
	if b.err == nil {
		b.err = err
	}
	return v
}

func (b *rowBinder) n(r sqlRow, col string) int64 {
	v, err := r.num(col)
	if b.err == nil {
		b.err = err
	}
	return v
}

func (b *rowBinder) t(r sqlRow, col string) (t time.Time) {
	s := b.s(r, col)
	t, err := parseTime(fmt.Sprintf("line %d: %s", r.line, col), s)
	if b.err == nil {
		b.err = err
	}
	return t
}

func (b *rowBinder) fail(r sqlRow, format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("line %d: %w: %s", r.line, ErrInvalid, fmt.Sprintf(format, args...))
	}
}

func bindResources(b *rowBinder, rows map[string][]sqlRow, d *dump) {
	devIdx := map[string]int{}
	for _, r := range rows["devices"] {
		dv := Device{ID: b.s(r, "id"), Domain: b.s(r, "domain"), Category: b.s(r, "category"), Owner: b.s(r, "owner"),
			Catalog: b.s(r, "catalog_name"), Identifier: b.s(r, "identifier"), PasswordHash: b.s(r, "password_hash"), Role: b.s(r, "role")}
		devIdx[dv.ID] = len(d.Devices)
		d.Devices = append(d.Devices, dv)
	}
	for _, r := range rows["device_optional"] {
		i, ok := devIdx[b.s(r, "device_id")]
		if !ok {
			b.fail(r, "device_optional for unknown device %q", b.s(r, "device_id"))
			continue
		}
		if d.Devices[i].Optional == nil {
			d.Devices[i].Optional = map[string]string{}
		}
		d.Devices[i].Optional[b.s(r, "opt_key")] = b.s(r, "opt_value")
	}
	grpIdx := map[string]int{}
	for _, r := range rows["resource_groups"] {
		g := Group{Name: b.s(r, "name"), Kind: b.s(r, "kind"), Domain: b.s(r, "domain"), Category: b.s(r, "category"),
			Owner: b.s(r, "owner"), Schedule: b.s(r, "schedule"), Description: b.s(r, "description")}
		grpIdx[g.Name] = len(d.Groups)
		d.Groups = append(d.Groups, groupDump{Group: g})
	}
	for _, r := range rows["group_optional"] {
		i, ok := grpIdx[b.s(r, "group_name")]
		if !ok {
			b.fail(r, "group_optional for unknown group %q", b.s(r, "group_name"))
			continue
		}
		if d.Groups[i].Optional == nil {
			d.Groups[i].Optional = map[string]string{}
		}
		d.Groups[i].Optional[b.s(r, "opt_key")] = b.s(r, "opt_value")
	}
	for _, r := range rows["group_members"] {
		i, ok := grpIdx[b.s(r, "group_name")]
		if !ok {
			b.fail(r, "member of unknown group %q", b.s(r, "group_name"))
			continue
		}
		d.Groups[i].Members = append(d.Groups[i].Members, b.s(r, "member_id"))
	}
	repl := append([]sqlRow(nil), rows["replication"]...)
	sort.SliceStable(repl, func(i, j int) bool { return repl[i].vals["ordinal"].n < repl[j].vals["ordinal"].n })
	for _, r := range repl {
		d.Replication = append(d.Replication, ruleRecord{LocalHost: b.s(r, "local_host"), LocalPort: int(b.n(r, "local_port")),
			RemoteHost: b.s(r, "remote_host"), RemotePort: int(b.n(r, "remote_port"))})
	}
	for _, r := range rows["keep_rules"] {
		k := KeepRule{Last: int(b.n(r, "keep_last")), Daily: int(b.n(r, "keep_daily")), Weekly: int(b.n(r, "keep_weekly")),
			Monthly: int(b.n(r, "keep_monthly")), Yearly: int(b.n(r, "keep_yearly"))}
		if _, ok := r.vals["keep_hourly"]; ok { // exports before keep_hourly lack the column
			k.Hourly = int(b.n(r, "keep_hourly"))
		}
		switch kind := b.s(r, "scope_kind"); kind {
		case "client":
			k.Client = b.s(r, "scope_name")
		case "group":
			k.Group = b.s(r, "scope_name")
		default:
			b.fail(r, "keep rule scope %q is not client or group", kind)
		}
		d.KeepRules = append(d.KeepRules, k)
	}
	bindSchedules(b, rows["schedules"], d)
	bindCertifications(b, rows, d)
}

func bindPieces(b *rowBinder, rows map[string][]sqlRow, d *dump) {
	for _, r := range rows["content"] {
		data, err := base64.StdEncoding.DecodeString(b.s(r, "data_base64"))
		if err != nil {
			b.fail(r, "content %s: bad base64: %v", b.s(r, "content_hash"), err)
		}
		d.Content = append(d.Content, contentDump{Ref: b.s(r, "content_hash"), Data: data})
	}
	idx := map[string]int{}
	for _, r := range rows["pieces"] {
		p := pieceDump{ID: b.s(r, "id"), Catalog: b.s(r, "catalog_name"), Client: b.s(r, "client"), Name: b.s(r, "piece_name"),
			Type: b.s(r, "piece_type"), Owner: b.s(r, "piece_owner"), Location: b.s(r, "backup_location"), Time: b.s(r, "backup_time"),
			Expiry: b.s(r, "expiry_time"), Size: b.n(r, "size"), Ref: b.s(r, "content_hash"), Group: b.s(r, "backup_group"), Job: b.s(r, "job_id")}
		idx[p.ID] = len(d.Pieces)
		d.Pieces = append(d.Pieces, p)
	}
	tags := append([]sqlRow(nil), rows["piece_tags"]...)
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].vals["ordinal"].n < tags[j].vals["ordinal"].n })
	for _, r := range tags {
		i, ok := idx[b.s(r, "piece_id")]
		if !ok {
			b.fail(r, "tag of unknown piece %q", b.s(r, "piece_id"))
			continue
		}
		a := tagDump{Key: b.s(r, "tag_key"), Value: b.s(r, "tag_value")}
		if _, ok := r.vals["device_key"]; ok { // absent in exports made before the column
			a.DeviceKey = b.s(r, "device_key")
		}
		d.Pieces[i].Tag = append(d.Pieces[i].Tag, a)
	}
	for _, r := range rows["piece_optional"] {
		i, ok := idx[b.s(r, "piece_id")]
		if !ok {
			b.fail(r, "optional field of unknown piece %q", b.s(r, "piece_id"))
			continue
		}
		if d.Pieces[i].Optional == nil {
			d.Pieces[i].Optional = map[string]string{}
		}
		d.Pieces[i].Optional[b.s(r, "opt_key")] = b.s(r, "opt_value")
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
