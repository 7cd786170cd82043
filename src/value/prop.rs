//! Property: a value normalizes the same whether MySQL printed it (text
//! protocol) or PostgreSQL did (text output), for the value kinds both
//! engines print differently.

use proptest::prelude::*;

use super::mysql::{from_text_bytes, MysqlType};
use super::pg::{from_pg_text, PgType};
use super::{temporal, Value};

fn my(text: &str, column_type: &str) -> Value {
    from_text_bytes(
        text.as_bytes().to_vec(),
        MysqlType::from_column_type(column_type),
    )
}

/// How MySQL prints DECIMAL(p, s): always `s` fractional digits.
fn mysql_decimal(int: &str, frac: &str, scale: usize, negative: bool) -> String {
    let mut f = frac.to_string();
    f.truncate(scale);
    while f.len() < scale {
        f.push('0');
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let sign = if negative && (int != "0" || f.chars().any(|c| c != '0')) {
        "-"
    } else {
        ""
    };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{f}")
    }
}

/// How PostgreSQL prints an unconstrained numeric holding the same value:
/// only the digits it needs.
fn pg_numeric(mysql_text: &str) -> String {
    if mysql_text.contains('.') {
        let t = mysql_text.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".into()
        } else {
            t.to_string()
        }
    } else {
        mysql_text.to_string()
    }
}

proptest! {
    #[test]
    fn integers(i in any::<i64>(), u in any::<u64>()) {
        prop_assert_eq!(my(&i.to_string(), "bigint"), from_pg_text(PgType::Int8, &i.to_string()));
        // BIGINT UNSIGNED lands in numeric(20).
        prop_assert_eq!(my(&u.to_string(), "bigint unsigned"), from_pg_text(PgType::Numeric, &u.to_string()));
        let small = (i % 32768) as i16;
        prop_assert_eq!(my(&small.to_string(), "smallint"), from_pg_text(PgType::Int2, &small.to_string()));
    }

    #[test]
    fn decimals(int in "[0-9]{1,35}", frac in "[0-9]{0,30}", scale in 0usize..=30, negative in any::<bool>()) {
        let mysql = mysql_decimal(&int, &frac, scale, negative);
        let a = my(&mysql, &format!("decimal(65,{scale})"));
        prop_assert_eq!(&a, &from_pg_text(PgType::Numeric, &mysql));
        prop_assert_eq!(&a, &from_pg_text(PgType::Numeric, &pg_numeric(&mysql)));
    }

    #[test]
    fn timestamps(micros in -30_610_224_000_000_000i64..253_402_300_799_999_999, precision in 0u32..=6) {
        // Both engines print the same instant; MySQL DATETIME(p) pads the
        // fraction to p digits, PostgreSQL trims zeros and timestamptz
        // appends the zone.
        let step = 10i64.pow(6 - precision);
        let micros = micros - micros.rem_euclid(step);
        let base = temporal::format_timestamp(micros);
        let (secs, frac) = base.split_once('.').map_or((base.as_str(), ""), |(s, f)| (s, f));
        let mysql = if precision == 0 {
            secs.to_string()
        } else {
            format!("{secs}.{:0<width$}", frac, width = precision as usize)[..20 + precision as usize].to_string()
        };
        let a = my(&mysql, &format!("datetime({precision})"));
        prop_assert_eq!(&a, &Value::Timestamp(micros));
        prop_assert_eq!(&a, &from_pg_text(PgType::Timestamp, &base));
        prop_assert_eq!(&a, &from_pg_text(PgType::Timestamptz, &format!("{base}+00")));
        // Another zone, same instant.
        let shifted = temporal::format_timestamp(micros + 5 * 3_600_000_000 + 30 * 60_000_000);
        prop_assert_eq!(&a, &from_pg_text(PgType::Timestamptz, &format!("{shifted}+05:30")));
    }

    #[test]
    fn strings(s in "\\PC*") {
        prop_assert_eq!(my(&s, "varchar(255)"), from_pg_text(PgType::Text, &s));
        // CHAR: MySQL strips trailing spaces on read; bpchar output keeps
        // the padding, which the model drops too.
        let trimmed = s.trim_end_matches(' ');
        prop_assert_eq!(my(trimmed, "char(255)"), from_pg_text(PgType::Bpchar, &format!("{s}   ")));
    }

    #[test]
    fn times(micros in -3_020_399_999_999i64..=3_020_399_999_999) {
        let text = temporal::format_time(micros);
        prop_assert_eq!(my(&text, "time(6)"), Value::Time(micros));
        prop_assert_eq!(my(&text, "time(6)"), from_pg_text(PgType::Interval, &text));
    }
}
