//! Config reload under a fleet: the phase between `dual_write` and
//! `new_primary` belongs to the control row. A file that still says what it
//! said at the last load keeps the running (fleet-set) phase; an edit of
//! `phase` across that boundary is refused while other live proxies are
//! registered — the flip goes through `tandem cutover`. A lone proxy may
//! still edit.

use crate::config::{Config, Phase};

use super::store;

fn governed(p: Phase) -> bool {
    matches!(p, Phase::DualWrite | Phase::NewPrimary)
}

/// Adjusts `new.phase` (or refuses) before a reload is applied.
pub async fn check(fleet: &super::Fleet, running: Phase, new: &mut Config) -> Result<(), String> {
    if !fleet.enabled() {
        return Ok(());
    }
    let file_before = fleet.file_phase.lock().ok().and_then(|p| *p);
    let file_now = new.phase;
    if !(governed(running) && governed(file_now)) {
        if let Ok(mut p) = fleet.file_phase.lock() {
            *p = Some(file_now);
        }
        return Ok(());
    }
    if file_before == Some(file_now) || file_now == running {
        // Not edited (or edited to what the fleet already runs).
        new.phase = running;
    } else {
        let me = fleet.me.lock().map(|m| m.clone()).unwrap_or_default();
        let live_ms = new.fleet.heartbeat_ms * u64::from(new.fleet.live_heartbeats.max(1));
        let pg = store::connect(new).await;
        let others = match &pg {
            Ok(pg) => store::members(pg, live_ms)
                .await
                .map(|ms| ms.into_iter().filter(|m| m.live && m.id != me).count())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match (others, pg.map_err(|e| e.to_string())) {
            (Ok(0), Ok(pg)) => {
                let side = super::side_name(crate::proxy::route::authoritative(file_now));
                store::set_authority(&pg, side, "phase edited on a lone proxy")
                    .await
                    .map_err(|e| format!("cannot record the phase in the fleet control row: {e}"))?;
            }
            (Ok(n), Ok(_)) => {
                return Err(format!(
                    "phase change {} -> {} refused: {n} other live prox{} registered in this fleet; \
                     run `tandem cutover{}` to switch them all together",
                    running.as_str(),
                    file_now.as_str(),
                    if n == 1 { "y is" } else { "ies are" },
                    if file_now == Phase::DualWrite { " --back" } else { "" }
                ))
            }
            (Err(e), _) | (Ok(_), Err(e)) => {
                return Err(format!(
                    "phase change {} -> {} refused: cannot read the fleet members ({e}); use `tandem cutover`",
                    running.as_str(),
                    file_now.as_str()
                ))
            }
        }
    }
    if let Ok(mut p) = fleet.file_phase.lock() {
        *p = Some(file_now);
    }
    Ok(())
}
