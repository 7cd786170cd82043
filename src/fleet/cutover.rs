//! `tandem cutover`: the fenced flip of a fleet's authoritative database.
//!
//! A `phase` edit applied by each proxy on its own lets two proxies write to
//! different primaries for a moment and loses writes the old side
//! acknowledged but the stream had not applied yet. Here one command drives
//! the control row every proxy follows:
//!
//! 1. gates — every live member on one config hash, in the phase the flip
//!    starts from, on the current epoch; stream lag under a bound; the
//!    `cutover-check` items (sequences are fixed during the fence);
//! 2. (a) raise the fence and wait until every live member acknowledged
//!    (its writes held, none in flight, its mirror queue drained);
//! 3. (b) wait until the stream's checkpoint reached the primary's current
//!    binlog position, then move identity sequences past the highest ids;
//! 4. (c) next epoch with the new authority, fence down, in one conditional
//!    update that only succeeds before the fence deadline — proxies switch
//!    phase and release the held writes to the new side;
//! 5. (d) the way back stays open: in `new_primary` the reverse stream
//!    (PostgreSQL logical decoding → MySQL, `[mirror] source = "binlog"`)
//!    copies every committed change back; its publication and slot are made
//!    before the fence, and inside it (after (b)) the slot moves to the
//!    current WAL position, stored as the reverse checkpoint in MySQL — the
//!    flip's first write is its first change, and nothing the forward stream
//!    wrote comes back. Without it the statement mirror copies writes back.
//!    `--back` waits in (b) until the reverse stream has applied everything
//!    PostgreSQL committed, and drops nothing (see `stream::reverse`).
//!
//! Any step that outruns `--max-pause-ms` lowers the fence under the old
//! epoch (nothing flipped) and says why.

use std::time::{Duration, Instant};

use crate::config::{Config, Phase, StreamSourceKind};
use crate::migrate::db::PgConn;
use crate::migrate::sqltext::Dialect;
use crate::migrate::{MigrateError, Sides};
use crate::proxy::route::Target;
use crate::stream::apply::checkpoint;

use super::member::config_hash;
use super::store::{self, Member};
use super::{parse_side, side_name};

#[derive(Debug, Clone)]
pub struct Options {
    /// The side that becomes authoritative.
    pub to: Target,
    /// Longest time writes are held (fence deadline).
    pub max_pause_ms: u64,
    /// Largest stream lag (seconds) a member may report at the gate.
    pub max_lag_s: i64,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CutoverError {
    #[error(transparent)]
    Store(#[from] MigrateError),
    #[error("gates failed; nothing was changed")]
    Gates,
    #[error("rolled back to the {authority} side (epoch {epoch} unchanged): {why}")]
    RolledBack {
        authority: &'static str,
        epoch: i64,
        why: String,
    },
}

/// What a finished cutover measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub epoch: i64,
    /// Fence raised → epoch advanced: the longest any write was held.
    pub pause_ms: u64,
    pub ack_ms: u64,
    pub catch_up_ms: u64,
    pub sequences_ms: u64,
    pub members: usize,
}

fn live_ms(config: &Config) -> u64 {
    config.fleet.heartbeat_ms * u64::from(config.fleet.live_heartbeats.max(1))
}

fn phase_for(to: Target) -> (Phase, Phase) {
    match to {
        Target::New => (Phase::DualWrite, Phase::NewPrimary),
        Target::Old => (Phase::NewPrimary, Phase::DualWrite),
    }
}

/// Checks the gates and prints one line per finding through `say`.
/// Returns the live members and the control epoch when all pass.
async fn gates(
    config: &Config,
    pg: &PgConn,
    opts: &Options,
    say: &mut dyn FnMut(String),
) -> Result<(Vec<Member>, i64), CutoverError> {
    let mut ok = true;
    let mut check = |good: bool, text: String, say: &mut dyn FnMut(String)| {
        ok &= good;
        say(format!(
            "{} {text}",
            if good { "OK     " } else { "FAILED " }
        ));
    };
    let control = store::control(pg).await?;
    let (from_phase, _) = phase_for(opts.to);
    let from = side_name(match opts.to {
        Target::New => Target::Old,
        Target::Old => Target::New,
    });
    // PostgreSQL cannot check MySQL logins: a passthrough fleet would refuse
    // every client after the switch.
    let passthrough = config.auth_mode() == crate::auth::mode::AuthMode::Passthrough;
    check(
        !(opts.to == Target::New && passthrough),
        if passthrough && opts.to == Target::New {
            "auth: [auth] mode is passthrough; new_primary needs mode = \"users\" with [[users]] (PostgreSQL cannot check MySQL logins)".to_string()
        } else {
            format!("auth: [auth] mode {}", config.auth_mode().as_str())
        },
        say,
    );
    check(
        control.authority == from,
        format!(
            "control: epoch {}, authority {} (a cutover to {} starts from {from})",
            control.epoch,
            control.authority,
            side_name(opts.to)
        ),
        say,
    );
    let fenced = control.fenced && !control.expired;
    check(
        !fenced,
        format!(
            "fence: {}",
            if fenced {
                "raised by another cutover"
            } else {
                "down"
            }
        ),
        say,
    );
    let members: Vec<Member> = store::members(pg, live_ms(config))
        .await?
        .into_iter()
        .filter(|m| m.live)
        .collect();
    check(
        !members.is_empty(),
        format!("members: {} live", members.len()),
        say,
    );
    let hash = config_hash(config);
    for m in &members {
        check(
            m.config_hash == hash,
            format!(
                "member {}: config hash {} (this config: {hash})",
                m.id, m.config_hash
            ),
            say,
        );
        check(
            m.phase == from_phase.as_str() && m.epoch == control.epoch,
            format!("member {}: phase {}, epoch {}", m.id, m.phase, m.epoch),
            say,
        );
        if opts.to == Target::New {
            if let (Some(lag), Some("applying")) = (m.stream_lag_s, m.stream_state.as_deref()) {
                check(
                    lag <= opts.max_lag_s,
                    format!(
                        "member {}: stream lag {lag} s (bound {} s)",
                        m.id, opts.max_lag_s
                    ),
                    say,
                );
            }
        }
    }
    if opts.to == Target::New {
        let sides = Sides::from_config(config)?;
        let report = crate::stream::cutover::run(config, &sides, false).await?;
        for item in report.items {
            if item.text.starts_with("mirror queue") || item.text.starts_with("stream:") {
                // Drained by every member before it acknowledges the fence;
                // the stream is caught up while writes are held (step b).
                continue;
            }
            let note = item.text.starts_with("sequence")
                || item.text.contains("never run")
                || item.text.contains("no run over all tables");
            if !item.ok && note {
                say(format!(
                    "NOTE    {} (handled during the fence or not recorded)",
                    item.text
                ));
            } else {
                check(item.ok, item.text, say);
            }
        }
    }
    if ok {
        Ok((members, control.epoch))
    } else {
        Err(CutoverError::Gates)
    }
}

fn running_error(e: tokio_postgres::Error) -> String {
    let why = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string());
    format!("cannot read PostgreSQL's running transactions: {why}")
}

/// Every PostgreSQL transaction that holds an xid now (a writer) is waited
/// for until it has committed or aborted, so the WAL position read next
/// covers it. The proxies' own writes are already done when they acknowledge
/// the fence (a PostgreSQL-served session answers a write after its commit,
/// at ReadyForQuery, and only then leaves the in-flight count); this covers
/// writers the fence does not count, such as a session opened on PostgreSQL
/// directly, whose commit would otherwise land after the target and be
/// stopped with the reverse stream at the flip.
async fn wait_running_writers(
    pg: &crate::migrate::db::PgConn,
    deadline: Instant,
    max_pause_ms: u64,
) -> Result<(), String> {
    let snapshot: String = pg
        .client
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(running_error)?;
    let running = "SELECT COALESCE(string_agg(x::text, ', '), '') FROM \
                   pg_snapshot_xip($1::text::pg_snapshot) AS x \
                   WHERE pg_xact_status(x) = 'in progress'";
    loop {
        let xids: String = pg
            .client
            .query_one(running, &[&snapshot])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(running_error)?;
        if xids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "transactions on PostgreSQL that were writing when the fence was acknowledged did not end within {max_pause_ms} ms (xids {xids}); a long write outside the proxies holds the cutover"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `--back`: waits until MySQL's reverse checkpoint reaches PostgreSQL's WAL
/// position at this moment (writes are held: nothing newer is coming).
async fn wait_reverse(config: &Config, deadline: Instant, max_pause_ms: u64) -> Result<(), String> {
    use crate::stream::reverse::setup;
    let new = config
        .backends
        .new
        .as_ref()
        .ok_or("[backends.new] is not configured")?;
    let pg = crate::stream::reverse::pg_connect(new)
        .await
        .map_err(|e| e.message)?;
    wait_running_writers(&pg, deadline, max_pause_ms).await?;
    let target = setup::current_lsn(&pg).await?;
    loop {
        let cp = setup::checkpoint_lsn(config).await?;
        if cp.is_some_and(|c| c >= target) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the reverse stream did not reach PostgreSQL's position {} within {max_pause_ms} ms (checkpoint {})",
                crate::stream::lsn_text(target),
                cp.map_or("none".into(), crate::stream::lsn_text)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the cutover; `say` receives every line to print.
pub async fn run(
    config: &Config,
    opts: &Options,
    say: &mut dyn FnMut(String),
) -> Result<Outcome, CutoverError> {
    let pg = store::connect(config).await?;
    store::ensure(
        &pg,
        side_name(crate::proxy::route::authoritative(config.phase)),
    )
    .await?;
    let (members, epoch) = gates(config, &pg, opts, say).await?;
    let to = side_name(opts.to);
    let binlog = config.mirror.source == StreamSourceKind::Binlog;
    let reverse = crate::stream::reverse::applies(config);
    let steps = [
        format!("(a) raise a fence on epoch {epoch} for at most {} ms; wait until the {} live member(s) hold new writes and have none in flight", opts.max_pause_ms, members.len()),
        if opts.to == Target::New && binlog {
            format!("(b) wait until the change stream's checkpoint reaches the primary's current binlog position; move identity sequences past the highest ids{}", if reverse { "; start the reverse stream's slot at PostgreSQL's current WAL position" } else { "" })
        } else if opts.to == Target::Old && reverse {
            "(b) wait until the reverse stream's checkpoint in MySQL reaches PostgreSQL's current WAL position; the forward stream then starts at MySQL's current binlog position".to_string()
        } else {
            "(b) (statement mirror: every member drained its queue before acknowledging)".to_string()
        },
        format!("(c) epoch {} with authority {to}, fence down: members switch phase and release held writes to the {to} side", epoch + 1),
        if opts.to == Target::New && reverse {
            "(d) the way back: in new_primary the reverse stream (logical slot → MySQL) copies every change back (`tandem cutover --back`)".to_string()
        } else if opts.to == Target::New {
            "(d) the way back: in new_primary every write is mirrored to MySQL by statement (`tandem cutover --back`)".to_string()
        } else {
            "(d) dual_write again: the binlog stream resumes from its checkpoint; the reverse stream's slot and publication stay (drop them at decommission)".to_string()
        },
    ];
    if opts.dry_run {
        for s in steps {
            say(format!("dry run: {s}"));
        }
        return Ok(Outcome {
            epoch,
            members: members.len(),
            ..Default::default()
        });
    }
    let authority = match opts.to {
        Target::New => "old",
        Target::Old => "new",
    };
    let rollback = |why: String| CutoverError::RolledBack {
        authority,
        epoch,
        why,
    };
    // The reverse stream's publication and slot exist before the fence
    // (creating a slot waits for running transactions: not inside it).
    if opts.to == Target::New && reverse {
        let ready = crate::stream::reverse::setup::ensure(config)
            .await
            .map_err(|why| rollback(format!("cannot set up the reverse stream: {why}")))?;
        say(format!(
            "reverse stream: publication {} ({} tables), slot {}{}",
            ready.names.publication,
            ready.tables.len(),
            ready.names.slot,
            if ready.created_slot { " (created)" } else { "" }
        ));
    }
    // Planned and connected before the fence: only the setval runs inside.
    let mut seq = None;
    if opts.to == Target::New {
        let sides = Sides::from_config(config)?;
        let (plans, _) = crate::migrate::plan_tables_lenient(&sides, None).await?;
        let old = sides.connect(crate::migrate::Side::Old).await?;
        let new = sides.connect(crate::migrate::Side::New).await?;
        seq = Some((old, new, plans));
    }
    let deadline = Instant::now() + Duration::from_millis(opts.max_pause_ms);
    let Some(fence) =
        store::raise_fence(&pg, epoch, opts.max_pause_ms, &format!("cutover to {to}")).await?
    else {
        return Err(rollback(
            "the control row changed before the fence was raised (another cutover?)".into(),
        ));
    };
    let fenced_at = Instant::now();
    say(steps[0].clone());
    let result = async {
        // (a) every member that was live at the gate acknowledges.
        loop {
            let now = store::members(&pg, live_ms(config)).await.map_err(|e| e.to_string())?;
            let missing: Vec<String> = members
                .iter()
                .filter(|m| !now.iter().any(|n| n.id == m.id && n.fence_ack == fence))
                .map(|m| m.id.clone())
                .collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("no fence acknowledgement from {} within {} ms", missing.join(", "), opts.max_pause_ms));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ack_ms = fenced_at.elapsed().as_millis() as u64;
        // (b) the stream reaches what the primary committed.
        let mut catch_up_ms = 0;
        let mut sequences_ms = 0;
        if opts.to == Target::New {
            if binlog {
                let started = Instant::now();
                let target = crate::stream::cutover::primary_position(config).await.map_err(|e| e.to_string())?;
                let stream_id = crate::stream::stream_id(config);
                let reached = checkpoint::reached_sql(Dialect::Postgres, &stream_id, &target);
                loop {
                    let row = pg.client.query_one(&reached, &[]).await.map_err(|e| e.to_string())?;
                    if row.get::<_, i64>(0) > 0 {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "the change stream did not reach the primary's position {}:{} within the pause",
                            target.file, target.offset
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                catch_up_ms = started.elapsed().as_millis() as u64;
            }
            let started = Instant::now();
            let items = match seq.as_mut() {
                Some((old, new, plans)) => crate::stream::cutover::fix_sequences(old, new, plans)
                    .await
                    .map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            if let Some(bad) = items.iter().find(|i| !i.ok) {
                return Err(format!("cannot move a sequence: {}", bad.text));
            }
            sequences_ms = started.elapsed().as_millis() as u64;
            if reverse {
                crate::stream::reverse::setup::start_here(config)
                    .await
                    .map_err(|e| format!("cannot start the reverse stream: {e}"))?;
            }
        } else if reverse {
            let started = Instant::now();
            wait_reverse(config, deadline, opts.max_pause_ms).await?;
            // MySQL now has everything PostgreSQL committed: the forward
            // stream starts at MySQL's current position instead of replaying
            // what the reverse stream wrote there.
            let here = crate::stream::cutover::primary_position(config).await.map_err(|e| e.to_string())?;
            let stream_id = config.backends.old.target().ok().and_then(|t| t.database).unwrap_or_default();
            let cp = checkpoint::Checkpoint { position: here, source_ts: 0 };
            pg.client
                .batch_execute(&format!(
                    "{};\n{}",
                    checkpoint::create_sql(Dialect::Postgres),
                    checkpoint::store_sql(Dialect::Postgres, &stream_id, &cp)
                ))
                .await
                .map_err(|e| format!("cannot move the forward stream's checkpoint: {e}"))?;
            catch_up_ms = started.elapsed().as_millis() as u64;
        }
        Ok::<_, String>((ack_ms, catch_up_ms, sequences_ms))
    }
    .await;
    let (ack_ms, catch_up_ms, sequences_ms) = match result {
        Ok(t) => t,
        Err(why) => {
            let _ = store::lower_fence(&pg, epoch, &format!("rolled back: {why}")).await;
            return Err(rollback(why));
        }
    };
    // (c) the flip, only if the fence still stands.
    if !store::advance(&pg, epoch, to, &format!("cutover to {to}")).await? {
        let why = "the fence deadline passed before the flip".to_string();
        let _ = store::lower_fence(&pg, epoch, &format!("rolled back: {why}")).await;
        return Err(rollback(why));
    }
    let pause_ms = fenced_at.elapsed().as_millis() as u64;
    say(format!("{} (writes held {pause_ms} ms: acks {ack_ms} ms, stream {catch_up_ms} ms, sequences {sequences_ms} ms)", steps[1]));
    say(steps[2].clone());
    // Members follow within a poll; report who did.
    let until = Instant::now() + Duration::from_millis(config.fleet.stale_ms.max(1000));
    loop {
        let now = store::members(&pg, live_ms(config)).await?;
        let behind: Vec<&str> = now
            .iter()
            .filter(|m| m.live && m.epoch != epoch + 1)
            .map(|m| m.id.as_str())
            .collect();
        if behind.is_empty() {
            break;
        }
        if Instant::now() >= until {
            say(format!(
                "note: {} not on epoch {} yet; they refuse writes until they are",
                behind.join(", "),
                epoch + 1
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    say(steps[3].clone());
    Ok(Outcome {
        epoch: epoch + 1,
        pause_ms,
        ack_ms,
        catch_up_ms,
        sequences_ms,
        members: members.len(),
    })
}

/// `tandem fleet status`: the control row and every member, one line each.
pub async fn status(config: &Config) -> Result<Vec<String>, MigrateError> {
    let pg = store::connect(config).await?;
    store::ensure(
        &pg,
        side_name(crate::proxy::route::authoritative(config.phase)),
    )
    .await?;
    let c = store::control(&pg).await?;
    let mut out = vec![format!(
        "control: epoch {} authority {} fence {}{}",
        c.epoch,
        c.authority,
        if c.fenced && !c.expired { "UP" } else { "down" },
        if c.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.note)
        }
    )];
    let _ = parse_side(&c.authority);
    for m in store::members(&pg, live_ms(config)).await? {
        out.push(format!(
            "{} {} addr {} v{} config #{} {} phase {} epoch {} lag {} stream {} silent {} ms",
            if m.live { "LIVE  " } else { "SILENT" },
            m.id,
            m.address,
            m.version,
            m.config_version,
            m.config_hash,
            m.phase,
            m.epoch,
            m.stream_lag_s.map_or("-".into(), |l| format!("{l} s")),
            m.stream_state.as_deref().unwrap_or("-"),
            m.silent_ms
        ));
    }
    Ok(out)
}
