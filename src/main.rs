use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use tandem::config::{Config, LogFormat};

mod cockpit_cli;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Zero-downtime database migration proxy (MySQL protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum CutoverSide {
    New,
}

#[derive(Subcommand)]
enum FleetCommand {
    /// List the control row and the members (live or silent).
    Status {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Overrides `[log] format`.
        #[arg(long)]
        log_format: Option<LogFormatArg>,
    },
    /// Run the change stream alone (binlog of the old backend -> new
    /// backend), without serving clients.
    Mirror {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Overrides `[log] format`.
        #[arg(long)]
        log_format: Option<LogFormatArg>,
    },
    /// Validate the config and reach both backends.
    Check {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
    },
    /// Print (or apply to the new backend) the new side's DDL, translated
    /// from the old backend's tables.
    Schema {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Run the DDL on the new backend instead of printing it.
        #[arg(long)]
        apply: bool,
        /// When a PostgreSQL new side gets the foreign keys: `after-backfill`
        /// (recorded as pending, added by `tandem backfill` once every table
        /// is copied) or `now` (right after the tables: an empty database).
        #[arg(long, value_enum, default_value = "after-backfill")]
        foreign_keys: ForeignKeysArg,
    },
    /// Copy every table old -> new in key order, resumably.
    Backfill {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Only these tables (comma-separated).
        #[arg(long)]
        tables: Option<String>,
        /// Rows per chunk (one target transaction and checkpoint each).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_rows: u64,
        /// Throttle: most rows per second, all tables together.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        rate: Option<u64>,
        /// Tables copied at the same time.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
        parallel: u64,
        /// Also copy tables without a primary or NOT NULL unique key (in one
        /// transaction each; no resume, no conflict detection).
        #[arg(long)]
        allow_no_pk: bool,
        /// Ignore existing checkpoints and copy from the start (existing rows
        /// on the new side still win).
        #[arg(long)]
        restart: bool,
    },
    /// Compare both backends table by table; exit 1 on differences.
    Verify {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Only these tables (comma-separated).
        #[arg(long)]
        tables: Option<String>,
        /// Rows per table also compared value by value (random sample).
        #[arg(long, default_value_t = 100)]
        sample: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Rows per compared chunk.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_rows: u64,
        /// Re-copy differing rows from the authoritative (old) side, delete
        /// rows it does not have, and compare them again.
        #[arg(long)]
        repair: bool,
        /// With a change stream applying into the new side, first wait up
        /// to this many seconds for it to reach the old side's binlog end
        /// (0: compare at once).
        #[arg(long, default_value_t = 120)]
        stream_wait_secs: u64,
    },
    /// Check what must hold before switching to `new_primary`.
    CutoverCheck {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Move identity/serial sequences past the largest ids.
        #[arg(long)]
        fix: bool,
    },
    /// Flip the fleet's authoritative database with a fence: gates, hold
    /// writes, let the stream catch up, advance the epoch (or roll back).
    Cutover {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Make the new database authoritative (the default).
        #[arg(long, conflicts_with = "back")]
        to: Option<CutoverSide>,
        /// Make the old database authoritative again.
        #[arg(long)]
        back: bool,
        /// Longest time writes are held; a step that needs more rolls back.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
        max_pause_ms: u64,
        /// Largest stream lag (seconds) a member may report at the gate.
        #[arg(long, default_value_t = 5)]
        max_lag_s: i64,
        /// Check the gates and print the steps; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The fleet of proxies registered on the new database.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Summarize the shadow-read mismatch log, most frequent statements first.
    Mismatches {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Read this log instead of the one `[shadow] log` names.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Show only the N most frequent statements.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The running proxy at a glance (from its admin endpoint).
    Status {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Admin address to ask instead of `[admin] listen`.
        #[arg(long)]
        admin: Option<String>,
        #[arg(long)]
        json: bool,
        /// Redraw every N seconds (default 2) until interrupted.
        #[arg(long, num_args = 0..=1, default_missing_value = "2")]
        watch: Option<u64>,
    },
    /// The read ramp of the running proxy: status, pause, resume.
    Ramp {
        action: RampAction,
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Admin address to ask instead of `[admin] listen`.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Write the migration plan for this database from live facts.
    Plan {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "md")]
        format: PlanFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Admin address to ask for live rates instead of `[admin] listen`.
        #[arg(long)]
        admin: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RampAction {
    Status,
    Pause,
    Resume,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Md,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Reading a file needs neither a runtime nor logging: stdout carries only
    // the report.
    let command = match cli.command {
        Command::Mismatches {
            config,
            log,
            json,
            limit,
        } => return mismatches(&config, log, json, limit),
        other => other,
    };
    // The runtime's size comes from the config; a config that doesn't load is
    // reported by the command itself.
    let threads = match &command {
        Command::Serve { config, .. } => Config::load(config)
            .map(|c| c.runtime.worker_threads)
            .unwrap_or(0),
        Command::Check { .. } | Command::Status { .. } | Command::Ramp { .. } => 1,
        _ => 0,
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads as usize);
        }
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve { config, log_format } => serve(config, log_format).await,
            Command::Check { config } => check(config).await,
            Command::Schema {
                config,
                apply,
                foreign_keys,
            } => schema(config, apply, foreign_keys).await,
            Command::Mirror { config, log_format } => mirror(config, log_format).await,
            Command::Backfill {
                config,
                tables,
                chunk_rows,
                rate,
                parallel,
                allow_no_pk,
                restart,
            } => {
                let opts = tandem::migrate::backfill::BackfillOptions {
                    tables: tandem::migrate::parse_table_list(tables.as_deref()),
                    chunk_rows,
                    rate,
                    parallel: parallel as usize,
                    allow_no_pk,
                    restart,
                };
                backfill(config, opts).await
            }
            Command::Verify {
                config,
                tables,
                sample,
                json,
                chunk_rows,
                repair,
                stream_wait_secs,
            } => {
                let opts = tandem::migrate::verify::VerifyOptions {
                    tables: tandem::migrate::parse_table_list(tables.as_deref()),
                    sample,
                    chunk_rows,
                    repair,
                    authoritative: tandem::migrate::Side::Old,
                    stream_wait_ms: stream_wait_secs.saturating_mul(1000),
                };
                verify(config, opts, json).await
            }
            Command::CutoverCheck { config, fix } => cutover_check(config, fix).await,
            Command::Status {
                config,
                admin,
                json,
                watch,
            } => cockpit_cli::status(config, admin, json, watch).await,
            Command::Ramp {
                action,
                config,
                admin,
            } => cockpit_cli::ramp(config, admin, action).await,
            Command::Plan {
                config,
                format,
                out,
                admin,
            } => cockpit_cli::plan(config, format, out, admin).await,
            Command::Cutover {
                config,
                to: _,
                back,
                max_pause_ms,
                max_lag_s,
                dry_run,
            } => {
                let opts = tandem::fleet::cutover::Options {
                    to: if back {
                        tandem::proxy::route::Target::Old
                    } else {
                        tandem::proxy::route::Target::New
                    },
                    max_pause_ms,
                    max_lag_s,
                    dry_run,
                };
                cutover(config, opts).await
            }
            Command::Fleet {
                command: FleetCommand::Status { config },
            } => fleet_status(config).await,
            Command::Mismatches { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

fn init_logging(config: &Config, format: Option<LogFormatArg>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => config.log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(path: PathBuf, format: Option<LogFormatArg>) -> anyhow::Result<ExitCode> {
    let mut config = load(&path)?;
    init_logging(&config, format);
    tandem::stream::source::resolve(&mut config).await;
    let (listener, addr) = tandem::server::bind(&config)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let state = tandem::server::AppState::new(config).map_err(anyhow::Error::msg)?;
    {
        // Auto-increment columns and keys, for mirroring with identical ids.
        if let Err(e) = state.refresh_schema().await {
            tracing::warn!(error = %e, "cannot read the schema from the old backend yet; ids are pinned once it is readable");
        }
    }
    tracing::info!(%addr, phase = state.snapshot.load().config.phase.as_str(), "tandem listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let admin = state.snapshot.load().config.admin.listen.clone();
    if !admin.is_empty() {
        match tandem::admin::start(&admin, state.clone(), shutdown.clone()).await {
            Ok(addr) => tracing::info!(%addr, "admin endpoint (/metrics, /status)"),
            // The proxy is more important than its metrics: keep serving.
            Err(e) => tracing::warn!(error = %e, addr = admin, "admin endpoint not started"),
        }
    }
    tandem::reload::spawn(path.clone(), state.clone(), shutdown.clone());
    // Owned background work: the cockpit (ramp, timeline) and the change
    // stream (source = "binlog"), stopped with the proxy after committing
    // what it received.
    let cockpit = tandem::cockpit::start(&state, shutdown.clone(), Default::default());
    let tasks = tokio_util::task::TaskTracker::new();
    if let Err(e) = tandem::stream::source::spawn(&state, &tasks, shutdown.clone(), false).await {
        tracing::error!(error = %e, "the change stream cannot start");
    }
    // Fleet membership ([fleet] enabled): registers, follows the control
    // row, deregisters at shutdown.
    if let Err(e) =
        tandem::fleet::member::spawn(&state, &tasks, shutdown.clone(), addr.to_string()).await
    {
        tracing::error!(error = %e, "fleet membership cannot start");
    }
    tasks.close();
    let threads = state.snapshot.load().config.runtime.worker_threads as usize;
    // One session thread per core unless the config asks for a single event
    // loop (then sessions run on the main runtime, itself single-threaded).
    let workers = match threads {
        1 => None,
        0 => Some(std::thread::available_parallelism().map_or(2, |n| n.get())),
        n => Some(n),
    }
    .map(tandem::workers::Workers::start)
    .transpose()
    .context("cannot start the session threads")?;
    tandem::server::run_on(listener, state, shutdown, workers.as_ref()).await;
    tasks.wait().await;
    cockpit.wait().await;
    drop(workers);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `tandem mirror`: the change stream alone, with the admin endpoint.
async fn mirror(path: PathBuf, format: Option<LogFormatArg>) -> anyhow::Result<ExitCode> {
    use tandem::config::StreamSourceKind;
    let mut config = load(&path)?;
    init_logging(&config, format);
    if config.backends.new.is_none() {
        anyhow::bail!("[backends.new] is not configured: the change stream needs a target");
    }
    if config.mirror.source == StreamSourceKind::Statements {
        anyhow::bail!("[mirror] source = \"statements\": `tandem mirror` applies the binlog (or, in new_primary, PostgreSQL's logical slot back to MySQL); set source = \"binlog\" (or \"auto\")");
    }
    tandem::stream::source::resolve(&mut config).await;
    if config.mirror.source != StreamSourceKind::Binlog {
        anyhow::bail!(
            "the old backend's binlog cannot be used (run `tandem check` for what to change)"
        );
    }
    let state = tandem::server::AppState::new(config).map_err(anyhow::Error::msg)?;
    if let Err(e) = state.refresh_schema().await {
        tracing::warn!(error = %e, "cannot read the schema from the old backend yet (needed to translate DDL)");
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let admin = state.snapshot.load().config.admin.listen.clone();
    if !admin.is_empty() {
        match tandem::admin::start(&admin, state.clone(), shutdown.clone()).await {
            Ok(addr) => tracing::info!(%addr, "admin endpoint (/metrics, /status)"),
            Err(e) => tracing::warn!(error = %e, addr = admin, "admin endpoint not started"),
        }
    }
    let tasks = tokio_util::task::TaskTracker::new();
    tandem::stream::source::spawn(&state, &tasks, shutdown.clone(), true)
        .await
        .map_err(anyhow::Error::msg)?;
    tasks.close();
    tasks.wait().await;
    // The direction that ran: the reverse stream in new_primary.
    let snap = if state.snapshot.load().config.phase == tandem::config::Phase::NewPrimary {
        state.reverse.snapshot()
    } else {
        state.stream.snapshot()
    };
    match snap.error {
        Some(e) if snap.state == "stopped" => {
            eprintln!("error: the change stream stopped: {e}");
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// SIGTERM or Ctrl-C: stop accepting and drain.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot install the SIGTERM handler");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
    shutdown.cancel();
}

async fn check(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            println!("config {}: FAILED: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = tandem::check::run(&config).await;
    for line in &report.lines {
        println!("{line}");
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads the config and the two backends for a migrate command.
fn migrate_setup(path: &std::path::Path) -> anyhow::Result<(Config, tandem::migrate::Sides)> {
    let config = load(path)?;
    init_logging(&config, None);
    let sides = tandem::migrate::Sides::from_config(&config)?;
    Ok((config, sides))
}

#[derive(Clone, Copy, ValueEnum)]
enum ForeignKeysArg {
    AfterBackfill,
    Now,
}

async fn schema(
    path: PathBuf,
    apply: bool,
    foreign_keys: ForeignKeysArg,
) -> anyhow::Result<ExitCode> {
    use tandem::migrate::schema::ForeignKeys;
    let (_, sides) = migrate_setup(&path)?;
    let when = match foreign_keys {
        ForeignKeysArg::AfterBackfill => ForeignKeys::AfterBackfill,
        ForeignKeysArg::Now => ForeignKeys::Now,
    };
    let report = tandem::migrate::schema::run(&sides, apply, when).await?;
    for (table, statements) in &report.tables {
        let exists = report.existing.contains(table);
        if apply {
            println!(
                "{table}: {}",
                if exists {
                    "exists on the new side, left unchanged"
                } else {
                    "created"
                }
            );
        } else {
            println!(
                "-- {table}{}",
                if exists {
                    " (already exists on the new side)"
                } else {
                    ""
                }
            );
            for s in statements {
                println!("{s};");
            }
        }
    }
    if !apply && !report.foreign_keys.is_empty() {
        println!("-- foreign keys (with --apply: held back until `tandem backfill` has copied every table; --foreign-keys now adds them at once)");
        for fk in &report.foreign_keys {
            println!("{};", fk.add_sql(false));
        }
    }
    if apply && report.added.is_empty() {
        for fk in &report.foreign_keys {
            println!(
                "foreign key {} -> {}: pending (`tandem backfill` adds it once every table is copied)",
                tandem::foreign_keys::label(fk),
                fk.references
            );
        }
    }
    for (fk, outcome) in &report.added {
        println!(
            "foreign key {} -> {}: {}",
            tandem::foreign_keys::label(fk),
            fk.references,
            outcome.describe()
        );
    }
    for n in &report.notes {
        eprintln!("not mapped exactly: {n}");
    }
    for u in &report.untranslatable {
        eprintln!("NOT TRANSLATED: {u}");
    }
    if !report.untranslatable.is_empty() {
        eprintln!(
            "{} table(s) could not be translated: create them on the new side by hand, then run backfill",
            report.untranslatable.len()
        );
    }
    if report.added.iter().any(|(_, o)| !o.is_added()) {
        eprintln!("some foreign keys could not be added (see above); they stay pending");
    }
    if !report.ok() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn backfill(
    path: PathBuf,
    opts: tandem::migrate::backfill::BackfillOptions,
) -> anyhow::Result<ExitCode> {
    use tandem::migrate::backfill::Status;
    let (_, sides) = migrate_setup(&path)?;
    let report = tandem::migrate::backfill::run(&sides, &opts).await?;
    let mut skipped = 0;
    for t in &report.tables {
        let status = match &t.status {
            Status::Copied => {
                format!(
                    "copied: {} rows read, {} inserted, {} already present, {:.1}s ({:.0} rows/s)",
                    t.rows,
                    t.inserted,
                    t.rows.saturating_sub(t.inserted),
                    t.seconds,
                    t.rows as f64 / t.seconds.max(1e-9)
                ) + &t
                    .snapshots
                    .as_ref()
                    .map(|(a, b)| format!(", snapshots at binlog {a} .. {b}"))
                    .unwrap_or_default()
                    + &if t.tombstoned > 0 {
                        format!(", {} deleted by the change stream meanwhile", t.tombstoned)
                    } else {
                        String::new()
                    }
            }
            Status::AlreadyDone => {
                "already complete (checkpoint); --restart copies it again".into()
            }
            Status::SkippedNoKey => {
                skipped += 1;
                "SKIPPED: no primary key or NOT NULL unique key (copy it with --allow-no-pk)".into()
            }
            Status::Failed(e) => format!("FAILED: {e}"),
        };
        println!("{}: {status}", t.table);
    }
    match &report.foreign_keys {
        tandem::migrate::fk::FkStep::NonePending => {}
        tandem::migrate::fk::FkStep::NotYet {
            pending,
            incomplete,
        } => println!(
            "foreign keys: {pending} pending until every table is copied (not yet: {})",
            incomplete.join(", ")
        ),
        tandem::migrate::fk::FkStep::Tried(tried) => {
            for (fk, outcome) in tried {
                println!(
                    "foreign key {} -> {}: {}",
                    tandem::foreign_keys::label(fk),
                    fk.references,
                    outcome.describe()
                );
            }
        }
    }
    if !report.ok() {
        eprintln!(
            "backfill incomplete{}: fix the errors above and run it again; it resumes from each table's checkpoint",
            if skipped > 0 { " (tables without a key were skipped)" } else { "" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(
    path: PathBuf,
    opts: tandem::migrate::verify::VerifyOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (_, sides) = migrate_setup(&path)?;
    let report = tandem::migrate::verify::run(&sides, &opts).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", tandem::migrate::report::render(&report));
    }
    Ok(if report.clean {
        ExitCode::SUCCESS
    } else if report.tables.iter().any(|t| t.error.is_some()) {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    })
}

async fn cutover_check(path: PathBuf, fix: bool) -> anyhow::Result<ExitCode> {
    let (mut config, sides) = migrate_setup(&path)?;
    // `auto` decides whether the stream or the statement mirror is checked.
    tandem::stream::source::resolve(&mut config).await;
    let report = tandem::migrate::cutover::run(&config, &sides, fix).await?;
    for item in &report.items {
        println!(
            "{} {}",
            if item.ok { "OK     " } else { "MISSING" },
            item.text
        );
    }
    if report.ok() {
        println!("cutover-check: ready for new_primary");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("cutover-check: NOT ready (see MISSING above)");
        Ok(ExitCode::FAILURE)
    }
}

async fn cutover(path: PathBuf, opts: tandem::fleet::cutover::Options) -> anyhow::Result<ExitCode> {
    use tandem::fleet::cutover::CutoverError;
    let mut config = load(&path)?;
    tandem::stream::source::resolve(&mut config).await;
    let mut say = |line: String| println!("{line}");
    match tandem::fleet::cutover::run(&config, &opts, &mut say).await {
        Ok(o) if opts.dry_run => {
            println!(
                "cutover: dry run, {} member(s), epoch {}; nothing changed",
                o.members, o.epoch
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(o) => {
            println!(
                "cutover: done, epoch {}, {} member(s), writes held {} ms",
                o.epoch, o.members, o.pause_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (CutoverError::Gates | CutoverError::RolledBack { .. })) => {
            println!("cutover: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn fleet_status(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = load(&path)?;
    for line in tandem::fleet::cutover::status(&config).await? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when nothing was logged, 1 when there are mismatches (like
/// `verify`), 2 when the log or the config cannot be read — so a script can
/// tell "differences" from "could not look".
fn mismatches(
    config: &std::path::Path,
    log: Option<PathBuf>,
    json: bool,
    limit: Option<usize>,
) -> ExitCode {
    let run = || -> anyhow::Result<tandem::shadow::summary::Summary> {
        let path = match log {
            Some(p) => p,
            None => {
                let (path, warning) = Config::shadow_log_lenient(config)
                    .with_context(|| format!("invalid config {}", config.display()))?;
                if let Some(w) = warning {
                    eprintln!(
                        "warning: {} is not a valid config ({w}); reading only [shadow] log = {}",
                        config.display(),
                        path.display()
                    );
                }
                path
            }
        };
        Ok(tandem::shadow::summary::read_log(&path)?)
    };
    let mut summary = match run() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if json {
        if let Some(n) = limit {
            summary.groups.truncate(n);
        }
        println!("{}", tandem::shadow::summary::render_json(&summary));
    } else {
        print!("{}", tandem::shadow::summary::render_text(&summary, limit));
    }
    if summary.total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
