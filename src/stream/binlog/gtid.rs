//! The GTID state a position carries, kept per domain (MariaDB) or per
//! source uuid (MySQL) and printed in the server's own notation.
//!
//! MariaDB: `@@gtid_binlog_pos` is the last GTID of each replication domain,
//! `domain-server-seq` joined by commas, ordered by domain. MySQL: an
//! executed set `uuid:1-n`; this state keeps the highest `n` per uuid and
//! assumes the set has no holes (true for a primary's own binlog, untested
//! here because these machines run MariaDB only).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState {
    /// MariaDB: domain → (server id, sequence number).
    mariadb: BTreeMap<u32, (u32, u64)>,
    /// MySQL: source uuid → highest transaction number.
    mysql: BTreeMap<String, u64>,
}

impl GtidState {
    /// Parses either notation; unknown entries are ignored (`None` if the
    /// text is not a GTID state at all).
    pub fn parse(text: &str) -> Option<GtidState> {
        let mut state = GtidState::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((uuid, ranges)) = part.split_once(':') {
                let high = ranges
                    .split(':')
                    .filter_map(|r| r.rsplit('-').next()?.parse::<u64>().ok())
                    .max()?;
                state.mysql.insert(uuid.to_ascii_lowercase(), high);
            } else {
                let mut it = part.splitn(3, '-');
                let domain = it.next()?.parse().ok()?;
                let server = it.next()?.parse().ok()?;
                let seq = it.next()?.parse().ok()?;
                state.mariadb.insert(domain, (server, seq));
            }
        }
        Some(state)
    }

    pub fn is_empty(&self) -> bool {
        self.mariadb.is_empty() && self.mysql.is_empty()
    }

    pub fn apply_mariadb(&mut self, domain: u32, server: u32, seq: u64) {
        self.mariadb.insert(domain, (server, seq));
    }

    pub fn apply_mysql(&mut self, uuid: &str, gno: u64) {
        let e = self.mysql.entry(uuid.to_string()).or_insert(0);
        *e = (*e).max(gno);
    }

    /// The state as the server prints it, `None` when empty.
    pub fn to_text(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .mariadb
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .chain(self.mysql.iter().map(|(u, n)| format!("{u}:1-{n}")))
            .collect();
        Some(parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_state_round_trips_and_advances() {
        let mut s = GtidState::parse("1-1-7,0-1-42").unwrap();
        assert_eq!(s.to_text().unwrap(), "0-1-42,1-1-7");
        s.apply_mariadb(0, 2, 43);
        assert_eq!(s.to_text().unwrap(), "0-2-43,1-1-7");
        assert!(GtidState::parse("").unwrap().is_empty());
        assert!(GtidState::parse("x-y").is_none());
    }

    #[test]
    fn mysql_state() {
        let mut s = GtidState::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5").unwrap();
        s.apply_mysql("3e11fa47-71ca-11e1-9e33-c80aa9429562", 6);
        assert_eq!(
            s.to_text().unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-6"
        );
    }
}
