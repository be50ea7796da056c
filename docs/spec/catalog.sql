-- Fleetvault open backup catalog standard, version 1 (docs/spec/catalog.md).
-- Portable SQL: loads unchanged into SQLite 3 and PostgreSQL 15.
-- Timestamps: ISO-8601 UTC text, 'YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ'.
-- Empty text is '' (not NULL); NULL means absent only where noted.

-- The export's own description, and the master backup record's fields
-- (keys: format, version, mbr.version, mbr.server, mbr.dr_server,
-- mbr.resources, mbr.catalog, mbr.catalogs.<name>, mbr.journal, mbr.methods).
CREATE TABLE fv_meta (
  meta_key   TEXT NOT NULL PRIMARY KEY,
  meta_value TEXT NOT NULL
);

-- Resource database: clients (devices) and servers.
CREATE TABLE devices (
  id            TEXT NOT NULL PRIMARY KEY, -- REQUIRED: resource name
  domain        TEXT NOT NULL,             -- e.g. 'North Africa', 'Asia'
  category      TEXT NOT NULL,             -- e.g. 'critical', 'non-critical'
  owner         TEXT NOT NULL,             -- data owner
  catalog_name  TEXT NOT NULL,             -- the client's catalog; '' = default
  identifier    TEXT NOT NULL,             -- how to reach its media agent
  password_hash TEXT NOT NULL,             -- broker credential: argon2id PHC string
  role          TEXT NOT NULL              -- 'device', 'server' or 'catalog-server'
);

CREATE TABLE device_optional (
  device_id TEXT NOT NULL REFERENCES devices (id),
  opt_key   TEXT NOT NULL,
  opt_value TEXT NOT NULL,
  PRIMARY KEY (device_id, opt_key)
);

-- Resource database: device groups and backup groups, with their own
-- information; members one row each.
CREATE TABLE resource_groups (
  name        TEXT NOT NULL PRIMARY KEY, -- REQUIRED
  kind        TEXT NOT NULL,             -- 'devices' or 'backup'
  domain      TEXT NOT NULL,
  category    TEXT NOT NULL,
  owner       TEXT NOT NULL,
  schedule    TEXT NOT NULL,             -- backup schedule, e.g. a cron line
  description TEXT NOT NULL
);

CREATE TABLE group_optional (
  group_name TEXT NOT NULL REFERENCES resource_groups (name),
  opt_key    TEXT NOT NULL,
  opt_value  TEXT NOT NULL,
  PRIMARY KEY (group_name, opt_key)
);

CREATE TABLE group_members (
  group_name TEXT NOT NULL REFERENCES resource_groups (name),
  member_id  TEXT NOT NULL, -- a device id
  PRIMARY KEY (group_name, member_id)
);

-- Resource database: the replication resource (used in DR mode).
-- Port 0 = any port / keep the port.
CREATE TABLE replication (
  ordinal     INTEGER NOT NULL PRIMARY KEY,
  local_host  TEXT NOT NULL,
  local_port  INTEGER NOT NULL,
  remote_host TEXT NOT NULL,
  remote_port INTEGER NOT NULL
);

-- Resource database: retention (keep rules) per client or backup group.
CREATE TABLE keep_rules (
  scope_kind   TEXT NOT NULL, -- 'client' or 'group'
  scope_name   TEXT NOT NULL,
  keep_last    INTEGER NOT NULL,
  keep_hourly  INTEGER NOT NULL DEFAULT 0,
  keep_daily   INTEGER NOT NULL,
  keep_weekly  INTEGER NOT NULL,
  keep_monthly INTEGER NOT NULL,
  keep_yearly  INTEGER NOT NULL,
  PRIMARY KEY (scope_kind, scope_name)
);

-- Resource database: backup schedules. When cron fires, the devices of
-- device_group are backed up into backup_group, then backup_group's keep
-- rule applies. cron: five fields or a descriptor, UTC unless it starts with
-- CRON_TZ=Zone. rpo_seconds: recovery point objective per device, 0 = none.
-- next_run: the next slot to run, NULL until the scheduler first sees it.
-- last_*: the latest run (its slot, backup job, the job's final state or
-- 'error', pieces retention removed), NULL/empty/0 until the first run.
-- rpo_missed: JSON list of the devices already told they missed the RPO.
CREATE TABLE schedules (
  name         TEXT NOT NULL PRIMARY KEY,
  device_group TEXT NOT NULL,
  backup_group TEXT NOT NULL,
  cron         TEXT NOT NULL,
  rpo_seconds  INTEGER NOT NULL,
  next_run     TEXT,
  last_run     TEXT,
  last_job     TEXT NOT NULL DEFAULT '',
  last_outcome TEXT NOT NULL DEFAULT '',
  last_pruned  INTEGER NOT NULL DEFAULT 0,
  rpo_missed   TEXT NOT NULL DEFAULT '[]'
);

-- Content, addressed by SHA-256 (lower-case hex). Optional: an export
-- without it references content only by hash.
CREATE TABLE content (
  content_hash TEXT NOT NULL PRIMARY KEY,
  size         BIGINT NOT NULL,
  data_base64  TEXT NOT NULL -- standard base64 with padding
);

-- The backup catalog: one row per data piece.
CREATE TABLE pieces (
  id              TEXT NOT NULL PRIMARY KEY, -- REQUIRED
  catalog_name    TEXT NOT NULL,             -- REQUIRED: '' = default catalog
  client          TEXT NOT NULL,             -- REQUIRED
  piece_name      TEXT NOT NULL,             -- REQUIRED: data piece
  piece_type      TEXT NOT NULL,             -- REQUIRED: data piece type
  piece_owner     TEXT NOT NULL,             -- REQUIRED: data piece owner
  backup_location TEXT NOT NULL,             -- REQUIRED: backup location identifier
  backup_time     TEXT NOT NULL,             -- REQUIRED: backup date and time
  expiry_time     TEXT,                      -- REQUIRED column: NULL = never expires
  size            BIGINT NOT NULL,           -- REQUIRED: bytes
  content_hash    TEXT NOT NULL,             -- REQUIRED: SHA-256 of the content
  backup_group    TEXT NOT NULL,
  job_id          TEXT NOT NULL
);

CREATE INDEX pieces_client_time ON pieces (client, backup_time);
CREATE INDEX pieces_group_client ON pieces (backup_group, client, backup_time);

-- The device's tag at backup time, attributes in the device's order.
-- tag_key is the normalised key (docs/spec/tagmatch.md: lower case, spaces
-- as '_', aliases resolved: 'User info' is 'zone'), so a query on a
-- well-known key finds every piece; device_key is the key as the device
-- spelled it ('User info'), which an import gives back.
CREATE TABLE piece_tags (
  piece_id   TEXT NOT NULL REFERENCES pieces (id),
  ordinal    INTEGER NOT NULL,
  tag_key    TEXT NOT NULL,
  tag_value  TEXT NOT NULL,
  device_key TEXT NOT NULL,
  PRIMARY KEY (piece_id, ordinal)
);

CREATE INDEX piece_tags_key_value ON piece_tags (tag_key, tag_value);

-- Optional fields: free key/values per piece.
CREATE TABLE piece_optional (
  piece_id  TEXT NOT NULL REFERENCES pieces (id),
  opt_key   TEXT NOT NULL,
  opt_value TEXT NOT NULL,
  PRIMARY KEY (piece_id, opt_key)
);

-- Restore history.
CREATE TABLE restores (
  id           TEXT NOT NULL PRIMARY KEY,
  device_id    TEXT NOT NULL,
  piece_id     TEXT NOT NULL, -- '' if none
  content_hash TEXT NOT NULL, -- '' if none
  job_id       TEXT NOT NULL,
  restore_time TEXT NOT NULL,
  outcome      TEXT NOT NULL, -- 'restored', 'failed', 'skipped', 'unchanged', ...
  detail       TEXT NOT NULL
);

CREATE INDEX restores_device_time ON restores (device_id, restore_time);

-- Certification of backups (optional: absent from exports made before it).
-- A backup (a piece of type 'settings') with no row is 'unknown'. state:
-- 'unknown', 'certified' or 'not-certified', decided by decided_by (a user;
-- 'fleetvault' when a policy lapsed it) at decided_at; reminded_at: the
-- last reminder sent while unknown; evidence: the last test restore, a JSON
-- object (docs/spec/catalog.md, "Certification"), NULL when none.
CREATE TABLE certifications (
  piece_id    TEXT NOT NULL PRIMARY KEY REFERENCES pieces (id),
  state       TEXT NOT NULL,
  decided_by  TEXT NOT NULL,
  decided_at  TEXT,
  note        TEXT NOT NULL,
  reminded_at TEXT,
  evidence    TEXT
);

-- Certification policy per device category ('critical', 'non-critical'),
-- only where changed from the default (critical: 90, 7; non-critical: 0,
-- 30). lapse_days: a certification goes back to 'unknown' that many days
-- after decided_at (0 = never); remind_days: the owner is reminded that
-- often while a current backup is 'unknown' (0 = never).
CREATE TABLE certification_policies (
  category    TEXT NOT NULL PRIMARY KEY,
  lapse_days  INTEGER NOT NULL,
  remind_days INTEGER NOT NULL
);
