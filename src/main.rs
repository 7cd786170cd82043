//! The `tandem` binary: parses the command line and dispatches to [`cli`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use tandem::config::Config;

mod cli;

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

#[derive(Clone, Copy, ValueEnum)]
enum ForeignKeysArg {
    AfterBackfill,
    Now,
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
        } => return cli::mismatches::mismatches(&config, log, json, limit),
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
            Command::Serve { config, log_format } => cli::serve::serve(config, log_format).await,
            Command::Check { config } => cli::serve::check(config).await,
            Command::Schema {
                config,
                apply,
                foreign_keys,
            } => cli::migrate::schema(config, apply, foreign_keys).await,
            Command::Mirror { config, log_format } => cli::serve::mirror(config, log_format).await,
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
                cli::migrate::backfill(config, opts).await
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
                cli::migrate::verify(config, opts, json).await
            }
            Command::CutoverCheck { config, fix } => cli::fleet::cutover_check(config, fix).await,
            Command::Status {
                config,
                admin,
                json,
                watch,
            } => cli::cockpit::status(config, admin, json, watch).await,
            Command::Ramp {
                action,
                config,
                admin,
            } => cli::cockpit::ramp(config, admin, action).await,
            Command::Plan {
                config,
                format,
                out,
                admin,
            } => cli::cockpit::plan(config, format, out, admin).await,
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
                cli::fleet::cutover(config, opts).await
            }
            Command::Fleet {
                command: FleetCommand::Status { config },
            } => cli::fleet::fleet_status(config).await,
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
