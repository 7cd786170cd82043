//! Calendar arithmetic and the ISO text forms both engines print
//! (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]`, `[-]H+:MM:SS[.f]`).
//! Proleptic Gregorian, like MySQL and PostgreSQL.

use std::fmt::Write as _;

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
pub const PG_EPOCH_DAYS: i32 = 10_957;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

/// The civil date of a day count since 2000-01-01 (PostgreSQL's epoch);
/// never overflows for any `i32`.
pub fn civil_from_pg_days(days: i32) -> (i64, u32, u32) {
    civil_from_days(i64::from(days) + i64::from(PG_EPOCH_DAYS))
}

/// `[-]HH:MM:SS[.ffffff]`: hours keep growing past 24 (MySQL TIME);
/// fractional digits are truncated to `fsp`.
pub fn push_time(out: &mut String, t: i64, fsp: u8, trim: bool) {
    let a = t.unsigned_abs();
    if t < 0 {
        out.push('-');
    }
    let secs = a / 1_000_000;
    let frac = a % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let f = format!("{frac:06}");
    if trim {
        let t = f.trim_end_matches('0');
        if !t.is_empty() {
            out.push('.');
            out.push_str(t);
        }
    } else if fsp > 0 {
        out.push('.');
        out.push_str(&f[..usize::from(fsp.min(6))]);
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` (PostgreSQL's ` BC` suffix accepted). `None` for zero or
/// impossible dates such as MySQL's `0000-00-00`.
pub fn parse_date(s: &str) -> Option<i32> {
    if let Some(days) = fixed_date(s.as_bytes()) {
        return days;
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut parts = s.splitn(3, '-');
    let y = digits(parts.next()?)?;
    let m = digits(parts.next()?)? as u32;
    let d = digits(parts.next()?)? as u32;
    let y = if bc { 1 - y } else { y };
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || (y == 0 && !bc) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn num(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as i64;
    }
    Some(n)
}

/// `YYYY-MM-DD` exactly (the form both engines print for years 1000-9999):
/// `Some(result)` when the text has that shape, `None` to take the general
/// path.
fn fixed_date(b: &[u8]) -> Option<Option<i32>> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        num(&b[0..4])?,
        num(&b[5..7])? as u32,
        num(&b[8..10])? as u32,
    );
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Some(None);
    }
    Some(i32::try_from(days_from_civil(y, m, d)).ok())
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,6}]` exactly, without a zone; see
/// [`fixed_date`] for the return convention.
fn fixed_datetime(b: &[u8]) -> Option<Option<i64>> {
    if b.len() < 19 || (b[10] != b' ' && b[10] != b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let frac = match &b[19..] {
        [] => 0,
        [b'.', f @ ..] if (1..=6).contains(&f.len()) => num(f)? * 10i64.pow(6 - f.len() as u32),
        _ => return None,
    };
    let day = fixed_date(&b[..10])?;
    let (h, mi, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if h > 24 || mi > 59 || s > 59 || (h == 24 && (mi, s, frac) != (0, 0, 0)) {
        return Some(None);
    }
    Some(day.map(|d| d as i64 * MICROS_PER_DAY + (h * 3600 + mi * 60 + s) * MICROS_PER_SEC + frac))
}

/// `[-]H+:MM:SS[.ffffff]` as signed microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut parts = s.splitn(3, ':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let third = parts.next()?;
    let (sec, frac) = third.split_once('.').unwrap_or((third, ""));
    let sec = digits(sec)?;
    if m > 59 || sec > 59 {
        return None;
    }
    let micros = (h * 3600 + m * 60 + sec) * MICROS_PER_SEC + parse_fraction(frac)?;
    Some(if neg { -micros } else { micros })
}

/// Up to 6 fractional digits as microseconds (more are rounded down).
fn parse_fraction(frac: &str) -> Option<i64> {
    if frac.is_empty() {
        return Some(0);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros = 0i64;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += (b - b'0') as i64 * 10i64.pow(5 - i as u32);
    }
    Some(micros)
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH[:MM[:SS]]][ BC]` as microseconds
/// since the epoch in UTC (a zone offset is applied; no offset means UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    if let Some(micros) = fixed_datetime(s.as_bytes()) {
        return micros;
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let split = s.find([' ', 'T'])?;
    let date = &s[..split];
    let mut rest = &s[split + 1..];
    let mut offset_secs = 0i64;
    if let Some(r) = rest.strip_suffix('Z') {
        rest = r;
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (time, zone) = rest.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let mut fields = zone[1..].split(':');
        let h = digits(fields.next()?)?;
        let m = fields.next().map(digits).unwrap_or(Some(0))?;
        let sec = fields.next().map(digits).unwrap_or(Some(0))?;
        offset_secs = sign * (h * 3600 + m * 60 + sec);
        rest = time;
    }
    let day = parse_date(&format!("{date}{}", if bc { " BC" } else { "" }))? as i64;
    let time = parse_time(rest)?;
    if !(0..=MICROS_PER_DAY).contains(&time) {
        return None;
    }
    Some(day * MICROS_PER_DAY + time - offset_secs * MICROS_PER_SEC)
}

/// `YYYY-MM-DD`; years before 1 in PostgreSQL's `YYYY-MM-DD BC` form.
pub fn format_date(days: i32) -> String {
    let mut out = String::with_capacity(13);
    write_date(&mut out, days as i64);
    out
}

fn write_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if y >= 1 {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    } else {
        let _ = write!(out, "{:04}-{m:02}-{d:02} BC", 1 - y);
    }
}

/// `[-]HH:MM:SS[.ffffff]` (fraction only when non-zero).
pub fn format_time(micros: i64) -> String {
    let mut out = String::with_capacity(16);
    write_time(&mut out, micros);
    out
}

pub fn write_time(out: &mut String, micros: i64) {
    if micros < 0 {
        out.push('-');
    }
    let m = micros.unsigned_abs();
    let secs = m / 1_000_000;
    let frac = m % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let _ = write!(out, ".{frac:06}");
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, without a zone.
pub fn format_timestamp(micros: i64) -> String {
    let mut out = String::with_capacity(26);
    write_timestamp(&mut out, micros);
    out
}

pub fn write_timestamp(out: &mut String, micros: i64) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let time = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let year = if y >= 1 { y } else { 1 - y };
    let _ = write!(out, "{year:04}-{m:02}-{d:02} ");
    write_time(out, time);
    if y < 1 {
        out.push_str(" BC");
    }
}

/// RFC 3339 UTC timestamp with microseconds, without a date-time crate.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-719_528i64, -1, 0, 1, 10_957, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS as i64);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_date("0000-00-00"), None);
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(
            parse_date("0001-01-01 BC").map(format_date).as_deref(),
            Some("0001-01-01 BC")
        );
        assert_eq!(
            parse_date("9999-12-31").map(format_date).as_deref(),
            Some("9999-12-31")
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("-838:59:59.5"),
            Some(-(838 * 3600 + 59 * 60 + 59) * MICROS_PER_SEC - 500_000)
        );
        assert_eq!(parse_time("12:00:00.000"), Some(12 * 3600 * MICROS_PER_SEC));
        assert_eq!(parse_time("00:00:01.000001"), Some(1_000_001));
        assert_eq!(parse_time("1:60:00"), None);
        assert_eq!(format_time(-1_500_000), "-00:00:01.500000");
        assert_eq!(format_time(838 * 3600 * MICROS_PER_SEC), "838:00:00");
    }

    #[test]
    fn datetimes_with_and_without_zones() {
        let plain = parse_datetime("2024-01-02 03:04:05.000000").unwrap();
        assert_eq!(parse_datetime("2024-01-02 03:04:05"), Some(plain));
        assert_eq!(parse_datetime("2024-01-02 03:04:05+00"), Some(plain));
        assert_eq!(parse_datetime("2024-01-02T05:04:05+02:00"), Some(plain));
        assert_eq!(parse_datetime("2024-01-01 22:04:05-05"), Some(plain));
        assert_eq!(format_timestamp(plain), "2024-01-02 03:04:05");
        let us = parse_datetime("1000-01-01 00:00:00.000001").unwrap();
        assert_eq!(format_timestamp(us), "1000-01-01 00:00:00.000001");
        assert_eq!(parse_datetime("0000-00-00 00:00:00"), None);
        let bc = parse_datetime("0044-03-15 12:00:00 BC").unwrap();
        assert_eq!(format_timestamp(bc), "0044-03-15 12:00:00 BC");
    }
}
