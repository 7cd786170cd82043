//! `tandem cutover-check`, `cutover` and `fleet status`: the switch to the
//! new primary across every proxy.

use std::path::PathBuf;
use std::process::ExitCode;

use super::load;
use super::migrate::migrate_setup;

pub async fn cutover_check(path: PathBuf, fix: bool) -> anyhow::Result<ExitCode> {
    let (mut config, sides) = migrate_setup(&path)?;
    // `auto` decides whether the stream or the statement mirror is checked.
    tandem::stream::source::resolve(&mut config).await;
    let report = tandem::stream::cutover::run(&config, &sides, fix).await?;
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

pub async fn cutover(
    path: PathBuf,
    opts: tandem::fleet::cutover::Options,
) -> anyhow::Result<ExitCode> {
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

pub async fn fleet_status(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = load(&path)?;
    for line in tandem::fleet::cutover::status(&config).await? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
