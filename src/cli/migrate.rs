//! `tandem schema`, `backfill` and `verify`: the one-shot migration steps.

use std::path::PathBuf;
use std::process::ExitCode;

use tandem::config::Config;

use super::{init_logging, load};
use crate::ForeignKeysArg;

/// Loads the config and the two backends for a migrate command.
pub fn migrate_setup(path: &std::path::Path) -> anyhow::Result<(Config, tandem::migrate::Sides)> {
    let config = load(path)?;
    init_logging(&config, None);
    let sides = tandem::migrate::Sides::from_config(&config)?;
    Ok((config, sides))
}

pub async fn schema(
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

pub async fn backfill(
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

pub async fn verify(
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
