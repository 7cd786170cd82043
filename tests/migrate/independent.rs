//! The every-type fixture and a comparison of both sides that uses only
//! SQL-side formatting, no Tandem code, to check what verify says.

use super::support::*;

pub const TYPES_MYSQL: &str = "
CREATE TABLE types (
  id BIGINT UNSIGNED PRIMARY KEY,
  flag TINYINT(1), small SMALLINT, medium MEDIUMINT UNSIGNED, big BIGINT,
  dec_small DECIMAL(10,2), dec_big DECIMAL(38,8), dec_huge DECIMAL(65,30),
  f FLOAT, d DOUBLE,
  name VARCHAR(100), body MEDIUMTEXT, ch CHAR(5),
  bin VARBINARY(20), blobby MEDIUMBLOB,
  day DATE, at DATETIME(6), ts TIMESTAMP(6) NULL, dur TIME(6), yr YEAR,
  color ENUM('red','green','blue'), tags SET('a','b','c'), doc JSON, bits BIT(12)
);
INSERT INTO types VALUES
 (18446744073709551615, 1, -32768, 16777215, -9223372036854775808,
  12345678.90, 123456789012345678901234567890.12345678,
  12345678901234567890123456789012345.123456789012345678901234567890,
  3.1415927, 1e300, 'héllo wörld ✓ 😀 日本', REPEAT('lorem ipsum ', 90000), 'ab',
  X'00FF7F', REPEAT(X'00FF10AB5C0A09', 150000),
  '2024-02-29', '2024-01-02 03:04:05.123456', '2038-01-19 03:14:07.999999', '-838:59:59', 2155,
  'green', 'a,c', '{\"k\": [1, 2.5, \"x\"], \"nested\": {\"b\": null, \"a\": true}}', b'101010101010'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (0, 0, 0, 0, 0, 0.00, -0.00000001, -0.000000000000000000000000000001,
  -1.5e-30, 2.2250738585072014e-308, 'tab\\there\\nnew line\\\\back \\'quote\\' \\\\N', '', '',
  X'', X'', '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '838:59:59.999999', 1901,
  'red', '', '[]', 0),
 (7, 1, 7, 7, 7, -99999999.99, 0.5, 1.5, 0.1, 0.1, 'a|b', 'x', 'abcde', X'5C4E', X'0D0A',
  '2000-01-01', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001', '00:00:00.5', 2000,
  'blue', 'b', '\"just a string\"', 4095);
";

pub const TYPES_PG: &str = "
CREATE TABLE types (id numeric(20) PRIMARY KEY, flag boolean, small smallint, medium integer,
  big bigint, dec_small numeric(10,2), dec_big numeric(38,8), dec_huge numeric(65,30), f real,
  d double precision, name varchar(100), body text, ch char(5), bin bytea, blobby bytea, day date,
  at timestamp(6), ts timestamptz(6), dur interval, yr smallint, color text, tags text, doc jsonb,
  bits bigint);
";

/// Per column: how each side prints it in the independent comparison, and
/// how the two printouts are compared.
pub enum Cmp {
    Exact,
    Number,
    Float,
    Json,
}

pub fn types_columns() -> Vec<(&'static str, String, String, Cmp)> {
    let plain = |c: &'static str, cmp| (c, c.to_string(), format!("{c}::text"), cmp);
    let hex = |c: &'static str| {
        (
            c,
            format!("HEX({c})"),
            format!("upper(encode(convert_to({c}::text, 'UTF8'), 'hex'))"),
            Cmp::Exact,
        )
    };
    let bytes = |c: &'static str| {
        (
            c,
            format!("HEX({c})"),
            format!("upper(encode({c}, 'hex'))"),
            Cmp::Exact,
        )
    };
    vec![
        plain("id", Cmp::Exact),
        ("flag", "flag".into(), "flag::int::text".into(), Cmp::Exact),
        plain("small", Cmp::Exact),
        plain("medium", Cmp::Exact),
        plain("big", Cmp::Exact),
        plain("dec_small", Cmp::Exact),
        plain("dec_big", Cmp::Exact),
        plain("dec_huge", Cmp::Exact),
        (
            "f",
            "CAST(f AS DOUBLE)".into(),
            "f::float8::text".into(),
            Cmp::Float,
        ),
        ("d", "d".into(), "d::text".into(), Cmp::Float),
        hex("name"),
        hex("body"),
        hex("ch"),
        bytes("bin"),
        bytes("blobby"),
        plain("day", Cmp::Exact),
        (
            "at",
            "DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f')".into(),
            "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')".into(),
            Cmp::Exact,
        ),
        (
            "ts",
            "UNIX_TIMESTAMP(ts)".into(),
            "extract(epoch from ts)::text".into(),
            Cmp::Number,
        ),
        (
            "dur",
            "TIME_TO_SEC(dur)".into(),
            "extract(epoch from dur)::text".into(),
            Cmp::Number,
        ),
        plain("yr", Cmp::Exact),
        hex("color"),
        hex("tags"),
        (
            "doc",
            "HEX(doc)".into(),
            "upper(encode(convert_to(doc::text, 'UTF8'), 'hex'))".into(),
            Cmp::Json,
        ),
        ("bits", "bits + 0".into(), "bits::text".into(), Cmp::Exact),
    ]
}

/// Reads `table` from both sides with SQL-side formatting only (no Tandem
/// code involved) and compares row by row, column by column.
pub fn compare_independently(
    env: &Env,
    table: &str,
    key: &str,
    columns: &[(&str, String, String, Cmp)],
) {
    let my_sql: Vec<String> = columns
        .iter()
        .map(|(_, m, _, _)| format!("COALESCE({m}, 'NULL')"))
        .collect();
    let pg_sql: Vec<String> = columns
        .iter()
        .map(|(_, _, p, _)| format!("coalesce({p}, 'NULL')"))
        .collect();
    let mine = split_rows(
        &env.my(&format!(
            "SELECT {} FROM {table} ORDER BY {key}",
            my_sql.join(", ")
        )),
        '\t',
    );
    let theirs = split_rows(
        &env.pg(&format!(
            "SELECT {} FROM {table} ORDER BY {key}",
            pg_sql.join(", ")
        )),
        '|',
    );
    assert_eq!(mine.len(), theirs.len(), "{table}: row counts");
    for (a, b) in mine.iter().zip(&theirs) {
        for (i, (name, _, _, cmp)) in columns.iter().enumerate() {
            let (x, y) = (&a[i], &b[i]);
            let same = match cmp {
                _ if x == "NULL" || y == "NULL" => x == y,
                Cmp::Exact => x == y,
                Cmp::Number => trim_decimal(x) == trim_decimal(y),
                Cmp::Float => {
                    x.parse::<f64>().ok() == y.parse::<f64>().ok() && x.parse::<f64>().is_ok()
                }
                Cmp::Json => {
                    let parse =
                        |h: &str| serde_json::from_slice::<serde_json::Value>(&unhex(h)).ok();
                    parse(x).is_some() && parse(x) == parse(y)
                }
            };
            let short = |s: &str| s.chars().take(80).collect::<String>();
            assert!(
                same,
                "{table} row {} column {name}: old {} new {}",
                a[0],
                short(x),
                short(y)
            );
        }
    }
}
