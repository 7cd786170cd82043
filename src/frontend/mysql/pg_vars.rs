//! System-variable SELECTs (`SELECT @@version_comment, @@autocommit …`,
//! what drivers ask at connect) while PostgreSQL is authoritative: answered
//! by the proxy from the old backend's variables as last read, or MariaDB
//! defaults, because PostgreSQL has no such variables. Split from
//! `pg_primary` to keep the dispatch loop readable.

use crate::backend::pg_mysql::PgError;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::io::PacketIo;
use crate::wire::packets::{ok_packet, OkInfo};
use crate::wire::StatusFlags;

const AUTOCOMMIT: u16 = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();

/// `SELECT @@a, @@session.b AS x …` (what drivers ask at connect): the
/// variable names and the column names to answer with.
pub(super) fn system_variables(sql: &str) -> Option<Vec<(String, String)>> {
    let body = sql.trim().trim_end_matches(';').trim_end();
    body.get(..7)
        .filter(|h| h.eq_ignore_ascii_case("select "))?;
    let mut list = body.get(7..)?;
    // The mariadb CLI asks `select @@version_comment limit 1`.
    if let Some((head, tail)) = list.rsplit_once(char::is_whitespace) {
        if tail.bytes().all(|b| b.is_ascii_digit()) && !tail.is_empty() {
            let head = head.trim_end();
            let cut = head.len().saturating_sub(5);
            if head
                .get(cut..)
                .is_some_and(|w| w.eq_ignore_ascii_case("limit"))
            {
                list = head.get(..cut).unwrap_or_default();
            }
        }
    }
    // `SELECT @@version FROM dual`: no table either.
    let trimmed = list.trim_end();
    let cut = trimmed.len().saturating_sub(10);
    if trimmed
        .get(cut..)
        .is_some_and(|w| w.eq_ignore_ascii_case(" from dual"))
    {
        list = trimmed.get(..cut).unwrap_or_default();
    }
    let mut out = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let (expr, alias) = match item.to_ascii_lowercase().find(" as ") {
            Some(i) => (
                item[..i].trim(),
                Some(item[i + 4..].trim().trim_matches('`').to_string()),
            ),
            // An alias without AS is one word (`@@a FROM dual` is not).
            None => match item.split_once(char::is_whitespace) {
                Some((_, a)) if a.trim().contains(char::is_whitespace) => return None,
                Some((e, a)) => (e.trim(), Some(a.trim().trim_matches('`').to_string())),
                None => (item, None),
            },
        };
        let name = expr.strip_prefix("@@")?;
        let var = name
            .strip_prefix("session.")
            .or_else(|| name.strip_prefix("SESSION."))
            .or_else(|| name.strip_prefix("global."))
            .or_else(|| name.strip_prefix("GLOBAL."))
            .or_else(|| name.strip_prefix("local."))
            .unwrap_or(name);
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        out.push((
            var.to_ascii_lowercase(),
            alias.unwrap_or_else(|| expr.to_string()),
        ));
    }
    (!out.is_empty()).then_some(out)
}

/// MariaDB's default for a variable the old backend did not report.
pub(super) fn default_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "max_allowed_packet" => "16777216",
        "sql_mode" => "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
        "time_zone" => "SYSTEM",
        "system_time_zone" => "UTC",
        "wait_timeout" | "interactive_timeout" => "28800",
        "lower_case_table_names" => "0",
        "transaction_isolation" | "tx_isolation" => "READ-COMMITTED",
        "character_set_client" | "character_set_connection" | "character_set_results" => "utf8mb4",
        "collation_connection" => "utf8mb4_general_ci",
        "version_comment" => "tandem (PostgreSQL authoritative)",
        _ => return None,
    })
}

/// Answers a system-variable SELECT from the old backend's variables (or
/// MariaDB defaults), as a one-row text result set.
pub(super) async fn answer_variables(
    client: &mut PacketIo,
    session: &Session,
    state: &AppState,
    vars: &[(String, String)],
) -> Result<(), PgError> {
    use crate::wire::buf::{put_lenenc_bytes, put_lenenc_int};
    let known = state.server_vars.load();
    let value = |name: &str| -> Option<String> {
        match name {
            "autocommit" => Some(
                if session.status & AUTOCOMMIT != 0 {
                    "1"
                } else {
                    "0"
                }
                .into(),
            ),
            // The proxy's own TLS, not the old backend's.
            "have_ssl" | "have_openssl" => Some(
                if super::tls::tls_cap(state) != 0 {
                    "YES"
                } else {
                    "DISABLED"
                }
                .into(),
            ),
            _ => known
                .get(name)
                .cloned()
                .or_else(|| default_value(name).map(str::to_string)),
        }
    };
    let mut seq = 1u8;
    let mut count = Vec::new();
    put_lenenc_int(&mut count, vars.len() as u64);
    seq = client.write_packet(seq, &count);
    let values: Vec<Option<String>> = vars.iter().map(|(n, _)| value(n)).collect();
    for ((_, label), v) in vars.iter().zip(&values) {
        let numeric = v
            .as_deref()
            .is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()));
        let mut def = Vec::new();
        for part in [&b"def"[..], b"", b"", b"", label.as_bytes(), b""] {
            put_lenenc_bytes(&mut def, part);
        }
        def.push(0x0c);
        let (charset, length, ty, flags): (u16, u32, u8, u16) = if numeric {
            (63, 21, 0x08, 0x0080 | 0x0020)
        } else {
            (session.collation.into(), 1024, 0xfd, 0)
        };
        def.extend_from_slice(&charset.to_le_bytes());
        def.extend_from_slice(&length.to_le_bytes());
        def.push(ty);
        def.extend_from_slice(&flags.to_le_bytes());
        def.push(if numeric { 0 } else { 39 });
        def.extend_from_slice(&[0, 0]);
        seq = client.write_packet(seq, &def);
    }
    let eof = |status: u16| {
        let mut e = vec![0xfe, 0, 0];
        e.extend_from_slice(&status.to_le_bytes());
        e
    };
    if !session.deprecate_eof() {
        seq = client.write_packet(seq, &eof(session.status));
    }
    let row =
        crate::wire::packets::text_row(values.iter().map(|v| v.as_deref().map(str::as_bytes)));
    seq = client.write_packet(seq, &row);
    if session.deprecate_eof() {
        let mut ok = ok_packet(OkInfo {
            status: session.status,
            ..Default::default()
        });
        ok[0] = 0xfe;
        client.write_packet(seq, &ok);
    } else {
        client.write_packet(seq, &eof(session.status));
    }
    client.flush().await?;
    Ok(())
}
