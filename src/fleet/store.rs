//! The fleet's control schema, kept on the new database (no coordination
//! service to run): `tandem_fleet_members`, one row per proxy written by its
//! heartbeat, and `tandem_fleet_control`, the single row that says which
//! side is authoritative (epoch, authority, fence).
//!
//! Timestamps are the database's (`now()`), so proxies' clocks do not have
//! to agree; ages are computed by the database too.

use crate::config::{BackendKind, Config};
use crate::migrate::db::{self, Db, PgConn};
use crate::migrate::MigrateError;

pub const MEMBERS: &str = "tandem_fleet_members";
pub const CONTROL: &str = "tandem_fleet_control";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS tandem_fleet_members (\
     id text PRIMARY KEY, address text NOT NULL, version text NOT NULL, \
     config_version bigint NOT NULL, config_hash text NOT NULL, phase text NOT NULL, \
     epoch bigint NOT NULL, fence_ack bigint NOT NULL DEFAULT 0, \
     stream_lag_s bigint, stream_state text, in_flight bigint NOT NULL DEFAULT 0, \
     started timestamptz NOT NULL DEFAULT now(), heartbeat timestamptz NOT NULL DEFAULT now()); \
     CREATE TABLE IF NOT EXISTS tandem_fleet_control (\
     id int PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL, authority text NOT NULL, \
     fenced boolean NOT NULL DEFAULT false, fence bigint NOT NULL DEFAULT 0, deadline timestamptz, \
     note text NOT NULL DEFAULT '', \
     updated timestamptz NOT NULL DEFAULT now())";

/// Connects to the new backend (PostgreSQL only in this version).
pub async fn connect(config: &Config) -> Result<PgConn, MigrateError> {
    let new = config.backends.new.as_ref().ok_or_else(|| {
        MigrateError::Config("[fleet] needs [backends.new]: the control schema lives there".into())
    })?;
    if new.kind != BackendKind::Postgres {
        return Err(MigrateError::Config(
            "[fleet] supports a PostgreSQL [backends.new] only in this version".into(),
        ));
    }
    match db::connect(new, "backends.new").await? {
        Db::Pg(pg) => Ok(pg),
        Db::My(_) => Err(MigrateError::Config(
            "backends.new is not PostgreSQL".into(),
        )),
    }
}

/// Creates the tables and the control row (authority `initial`, epoch 1)
/// when missing.
pub async fn ensure(pg: &PgConn, initial: &str) -> Result<(), MigrateError> {
    // Proxies of a fleet start together: concurrent `CREATE … IF NOT EXISTS`
    // of one table race in PostgreSQL's catalog (a unique violation on
    // pg_type), so creation is serialized by a transaction-level lock.
    let created = pg
        .client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tandem_fleet_schema')); {CREATE}; COMMIT"
        ))
        .await;
    if let Err(e) = created {
        // Leave the connection usable (not inside an aborted transaction).
        let _ = pg.client.batch_execute("ROLLBACK").await;
        return Err(e.into());
    }
    pg.client
        .execute(
            "INSERT INTO tandem_fleet_control (id, epoch, authority) VALUES (1, 1, $1) \
             ON CONFLICT (id) DO NOTHING",
            &[&initial],
        )
        .await?;
    Ok(())
}

/// The control row, with the fence's remaining time computed by the
/// database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Control {
    pub epoch: i64,
    pub authority: String,
    pub fenced: bool,
    /// Number of the last fence raised: members acknowledge this one, so an
    /// acknowledgement of an earlier (rolled back) fence does not count.
    pub fence: i64,
    /// Milliseconds until the fence deadline (negative: passed).
    pub fence_left_ms: Option<i64>,
    /// Raised and its deadline passed (by the database's clock), but not
    /// lowered: only [`expire_fence`] may release the held writes, since a
    /// flip that started before the deadline may still commit.
    pub expired: bool,
    pub note: String,
}

pub async fn control(pg: &PgConn) -> Result<Control, MigrateError> {
    let row = pg
        .client
        .query_one(
            "SELECT epoch, authority, fenced, \
             (EXTRACT(EPOCH FROM (deadline - now())) * 1000)::bigint, note, fence, \
             fenced AND COALESCE(deadline <= now(), true) \
             FROM tandem_fleet_control WHERE id = 1",
            &[],
        )
        .await?;
    Ok(Control {
        epoch: row.get(0),
        authority: row.get(1),
        fenced: row.get(2),
        fence_left_ms: row.get(3),
        note: row.get(4),
        fence: row.get(5),
        expired: row.get(6),
    })
}

/// One member row as `tandem fleet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub id: String,
    pub address: String,
    pub version: String,
    pub config_version: i64,
    pub config_hash: String,
    pub phase: String,
    pub epoch: i64,
    pub fence_ack: i64,
    pub stream_lag_s: Option<i64>,
    pub stream_state: Option<String>,
    pub in_flight: i64,
    /// Milliseconds since the last heartbeat (database clock).
    pub silent_ms: i64,
    pub live: bool,
}

/// Every registered member; `live` when its heartbeat is younger than
/// `live_ms`.
pub async fn members(pg: &PgConn, live_ms: u64) -> Result<Vec<Member>, MigrateError> {
    let rows = pg
        .client
        .query(
            "SELECT id, address, version, config_version, config_hash, phase, epoch, fence_ack, \
             stream_lag_s, stream_state, in_flight, \
             (EXTRACT(EPOCH FROM (now() - heartbeat)) * 1000)::bigint \
             FROM tandem_fleet_members ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let silent_ms: i64 = r.get(11);
            Member {
                id: r.get(0),
                address: r.get(1),
                version: r.get(2),
                config_version: r.get(3),
                config_hash: r.get(4),
                phase: r.get(5),
                epoch: r.get(6),
                fence_ack: r.get(7),
                stream_lag_s: r.get(8),
                stream_state: r.get(9),
                in_flight: r.get(10),
                silent_ms,
                live: silent_ms <= live_ms as i64,
            }
        })
        .collect())
}

/// What a heartbeat writes.
pub struct Beat<'a> {
    pub id: &'a str,
    pub address: &'a str,
    pub config_version: i64,
    pub config_hash: &'a str,
    pub phase: &'a str,
    pub epoch: i64,
    pub stream_lag_s: Option<i64>,
    pub stream_state: Option<&'a str>,
    pub in_flight: i64,
}

pub async fn heartbeat(pg: &PgConn, b: &Beat<'_>) -> Result<(), MigrateError> {
    pg.client
        .execute(
            "INSERT INTO tandem_fleet_members (id, address, version, config_version, config_hash, \
             phase, epoch, stream_lag_s, stream_state, in_flight) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET \
             address = EXCLUDED.address, version = EXCLUDED.version, \
             config_version = EXCLUDED.config_version, config_hash = EXCLUDED.config_hash, \
             phase = EXCLUDED.phase, epoch = EXCLUDED.epoch, stream_lag_s = EXCLUDED.stream_lag_s, \
             stream_state = EXCLUDED.stream_state, in_flight = EXCLUDED.in_flight, heartbeat = now()",
            &[
                &b.id,
                &b.address,
                &env!("CARGO_PKG_VERSION"),
                &b.config_version,
                &b.config_hash,
                &b.phase,
                &b.epoch,
                &b.stream_lag_s,
                &b.stream_state,
                &b.in_flight,
            ],
        )
        .await?;
    Ok(())
}

/// Records that this member holds its writes for fence number `fence`.
pub async fn ack_fence(pg: &PgConn, id: &str, fence: i64) -> Result<(), MigrateError> {
    pg.client
        .execute(
            "UPDATE tandem_fleet_members SET fence_ack = $2, heartbeat = now() WHERE id = $1",
            &[&id, &fence],
        )
        .await?;
    Ok(())
}

/// Records the epoch this member now serves under.
pub async fn note_epoch(
    pg: &PgConn,
    id: &str,
    epoch: i64,
    phase: &str,
) -> Result<(), MigrateError> {
    pg.client
        .execute(
            "UPDATE tandem_fleet_members SET epoch = $2, phase = $3, heartbeat = now() WHERE id = $1",
            &[&id, &epoch, &phase],
        )
        .await?;
    Ok(())
}

pub async fn deregister(pg: &PgConn, id: &str) -> Result<(), MigrateError> {
    pg.client
        .execute("DELETE FROM tandem_fleet_members WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

/// Raises a new fence on the current epoch for `max_pause_ms` and returns
/// its number; `None` when the epoch moved or a fence is already up
/// (another cutover).
pub async fn raise_fence(
    pg: &PgConn,
    epoch: i64,
    max_pause_ms: u64,
    note: &str,
) -> Result<Option<i64>, MigrateError> {
    let rows = pg
        .client
        .query(
            "UPDATE tandem_fleet_control SET fenced = true, fence = fence + 1, \
             deadline = now() + make_interval(secs => $2::bigint / 1000.0), note = $3, updated = now() \
             WHERE id = 1 AND epoch = $1 AND NOT (fenced AND deadline > now()) RETURNING fence",
            &[&epoch, &(max_pause_ms as i64), &note],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// A member lowers fence `fence` once its deadline passed, so that the
/// writes it holds go on under the unchanged epoch. Conditional on the row
/// itself: a flip ([`advance`]) that checked the deadline before it passed
/// holds the row until it commits, and this update then finds the fence
/// gone (false: read the row again, the epoch moved); one that comes after
/// finds the fence lowered and fails. Reading the deadline alone cannot
/// tell the two apart — the flip may commit just after the read.
pub async fn expire_fence(pg: &PgConn, fence: i64) -> Result<bool, MigrateError> {
    let n = pg
        .client
        .execute(
            "UPDATE tandem_fleet_control SET fenced = false, deadline = NULL, \
             note = 'fence expired before the flip: ' || note, updated = now() \
             WHERE id = 1 AND fence = $1 AND fenced AND deadline <= now()",
            &[&fence],
        )
        .await?;
    Ok(n == 1)
}

/// Lowers the fence without changing the epoch (rollback).
pub async fn lower_fence(pg: &PgConn, epoch: i64, note: &str) -> Result<(), MigrateError> {
    pg.client
        .execute(
            "UPDATE tandem_fleet_control SET fenced = false, deadline = NULL, note = $2, updated = now() \
             WHERE id = 1 AND epoch = $1",
            &[&epoch, &note],
        )
        .await?;
    Ok(())
}

/// The flip: next epoch, new authority, fence down — in one statement, and
/// only if the fence of `epoch` is still up and within its deadline (a
/// proxy that gave up waiting has not been promised anything else).
pub async fn advance(
    pg: &PgConn,
    epoch: i64,
    authority: &str,
    note: &str,
) -> Result<bool, MigrateError> {
    let n = pg
        .client
        .execute(
            "UPDATE tandem_fleet_control SET epoch = epoch + 1, authority = $2, fenced = false, \
             deadline = NULL, note = $3, updated = now() \
             WHERE id = 1 AND epoch = $1 AND fenced AND deadline > now()",
            &[&epoch, &authority, &note],
        )
        .await?;
    Ok(n == 1)
}

/// A lone proxy's phase edit: the control row follows it (next epoch, no
/// fence), so that the member task does not switch it back.
pub async fn set_authority(pg: &PgConn, authority: &str, note: &str) -> Result<(), MigrateError> {
    pg.client
        .execute(
            "UPDATE tandem_fleet_control SET epoch = epoch + 1, authority = $1, fenced = false, \
             deadline = NULL, note = $2, updated = now() WHERE id = 1 AND authority <> $1",
            &[&authority, &note],
        )
        .await?;
    Ok(())
}
