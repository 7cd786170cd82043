//! Generators for the property test: MySQL literals per column of
//! `kinds`, and statements over the schema in `translate_pg.rs`.

use proptest::prelude::*;

fn mysql_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn text(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 '\"\\\\%_\n\téü中🙂]{{0,{max}}}"))
        .expect("regex")
        .prop_map(|s| mysql_string(&s))
        .boxed()
}

fn bytes(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=max).prop_map(|b| {
            if b.is_empty() {
                "''".to_string()
            } else {
                format!(
                    "X'{}'",
                    b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                )
            }
        }),
        proptest::string::string_regex(&format!("[a-z\0'\\\\]{{0,{max}}}"))
            .expect("regex")
            .prop_map(|s| mysql_string(&s)),
    ]
    .boxed()
}

fn int(min: i64, max: i64) -> BoxedStrategy<String> {
    (min..=max).prop_map(|n| n.to_string()).boxed()
}

fn datetime(fraction: bool, first_year: i32) -> BoxedStrategy<String> {
    (
        first_year..2037,
        1..=12u32,
        1..=28u32,
        0..24u32,
        0..60u32,
        0..60u32,
        0..1_000_000u32,
    )
        .prop_map(move |(y, mo, d, h, mi, s, us)| {
            if fraction {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'")
            } else {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}'")
            }
        })
        .boxed()
}

/// A literal for a column of `kinds` (NULL included where allowed).
fn value(column: &str) -> BoxedStrategy<String> {
    let v = match column {
        "flag" => prop_oneof![Just("0".into()), Just("1".into()), Just("TRUE".into())].boxed(),
        "tiny" => int(-128, 127),
        "tiny_u" => int(0, 255),
        "small" => int(-32768, 32767),
        "small_u" => int(0, 65535),
        "medium" => int(-8_388_608, 8_388_607),
        "medium_u" => int(0, 16_777_215),
        "num" => int(-1_000_000, 1_000_000),
        "big" => any::<i64>().prop_map(|n| n.to_string()).boxed(),
        "big_u" => any::<u64>().prop_map(|n| n.to_string()).boxed(),
        "price" => (-9_999_999_999i64..=9_999_999_999)
            .prop_map(|c| format!("{:.2}", c as f64 / 100.0))
            .boxed(),
        "ratio" => (-1e6f64..1e6).prop_map(|x| format!("{x:e}")).boxed(),
        "f" => (-1e4f64..1e4).prop_map(|x| format!("{x:.3}")).boxed(),
        "code" => text(3),
        "body" | "tiny_t" | "medium_t" | "long_t" => text(30),
        "data" | "tiny_b" | "medium_b" | "long_b" => bytes(12),
        "vb" => bytes(16),
        "fixed" => bytes(4),
        "created" => datetime(false, 1900),
        "created6" => datetime(true, 1900),
        "seen" => datetime(false, 1971),
        "day" => (1900..2100i32, 1..=12u32, 1..=28u32)
            .prop_map(|(y, m, d)| format!("'{y:04}-{m:02}-{d:02}'"))
            .boxed(),
        "at_time" => (0..24u32, 0..60u32, 0..60u32)
            .prop_map(|(h, m, s)| format!("'{h:02}:{m:02}:{s:02}'"))
            .boxed(),
        "yr" => int(1901, 2155),
        "bits" => prop_oneof![
            (0..=255u32).prop_map(|n| n.to_string()),
            (0..=255u32).prop_map(|n| format!("b'{n:b}'")),
        ]
        .boxed(),
        "size" => prop_oneof![Just("'s'".into()), Just("'m'".into()), Just("'L'".into())].boxed(),
        "tags" => proptest::sample::subsequence(vec!["a", "b", "c"], 0..=3)
            .prop_shuffle()
            .prop_map(|t| format!("'{}'", t.join(",")))
            .boxed(),
        "doc" => prop_oneof![
            Just("'{\"a\": 1}'".into()),
            Just("'[1, \"x\", null]'".into())
        ]
        .boxed(),
        other => panic!("no generator for column {other}"),
    };
    if column == "flag" {
        return v;
    }
    prop_oneof![1 => Just("NULL".to_string()), 6 => v].boxed()
}

const VALUE_COLUMNS: &[&str] = &[
    "flag", "tiny", "tiny_u", "small", "small_u", "medium", "medium_u", "num", "big", "big_u",
    "price", "ratio", "f", "code", "body", "tiny_t", "medium_t", "long_t", "data", "tiny_b",
    "medium_b", "long_b", "vb", "fixed", "created", "created6", "seen", "day", "at_time", "yr",
    "bits", "size", "tags", "doc",
];

/// A unique, quote-laden `name`.
fn name() -> BoxedStrategy<String> {
    (any::<u32>(), "[a-z'\\\\ é]{0,6}")
        .prop_map(|(n, s)| mysql_string(&format!("n{n}{s}")))
        .boxed()
}

fn condition() -> BoxedStrategy<String> {
    prop_oneof![
        Just("flag = 1".to_string()),
        Just("flag = 0".to_string()),
        Just("flag <> 0 AND body IS NOT NULL".to_string()),
        (-10..10i32).prop_map(|n| format!("num > {n}")),
        Just("name LIKE 'seed%'".to_string()),
        Just("seen IS NULL".to_string()),
        Just("id IN (1000, 1001, 1002)".to_string()),
        Just("price BETWEEN 1 AND 1000".to_string()),
        Just("size = 'm'".to_string()),
    ]
    .boxed()
}

fn order_column() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["id", "num", "name", "seen", "price", "body"]),
        any::<bool>(),
    )
        .prop_map(|(c, desc)| {
            if desc {
                format!("{c} DESC")
            } else {
                c.to_string()
            }
        })
}

/// A row for `columns` (name first).
fn row(columns: Vec<&'static str>) -> BoxedStrategy<String> {
    let values: Vec<BoxedStrategy<String>> = columns.iter().map(|c| value(c)).collect();
    (name(), values)
        .prop_map(|(n, vs)| format!("({n}, {})", vs.join(", ")))
        .boxed()
}

fn some_columns() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(VALUE_COLUMNS.to_vec(), 1..8)
}

pub fn statement() -> BoxedStrategy<String> {
    let insert = some_columns()
        .prop_flat_map(|cols| {
            let list = cols.join(", ");
            (proptest::collection::vec(row(cols), 1..4), any::<bool>()).prop_map(
                move |(rows, ignore)| {
                    let ignore = if ignore { "IGNORE " } else { "" };
                    format!(
                        "INSERT {ignore}INTO kinds (name, {list}) VALUES {}",
                        rows.join(", ")
                    )
                },
            )
        })
        .boxed();
    let upsert_kinds = (1000..1005u32, name(), value("num"), value("price")).prop_map(|(id, n, num, price)| {
        format!(
            "INSERT INTO kinds (id, name, num, price) VALUES ({id}, {n}, {num}, {price}) \
             ON DUPLICATE KEY UPDATE num = IFNULL(num, 0) + 1, price = VALUES(price), ratio = num / 3"
        )
    });
    let upsert_counters = (prop::sample::select(vec!["a", "b", "c"]), 0..100i32, text(20)).prop_map(|(k, n, note)| {
        format!(
            "INSERT INTO counters (k, n, note) VALUES ('{k}', {n}, {note}) \
             ON DUPLICATE KEY UPDATE n = n + VALUES(n), note = CONCAT(IFNULL(note, ''), VALUES(note))"
        )
    });
    let replace = prop_oneof![
        (prop::sample::select(vec!["a", "b", "z"]), 0..100i32)
            .prop_map(|(k, n)| format!("REPLACE INTO counters (k, n) VALUES ('{k}', {n})")),
        (prop::sample::select(vec!["a", "q"]), text(20))
            .prop_map(|(k, note)| format!("REPLACE INTO counters SET k = '{k}', note = {note}")),
        (1000..1004u32, name(), value("body")).prop_map(|(id, n, b)| format!(
            "REPLACE INTO kinds (id, name, body) VALUES ({id}, {n}, {b})"
        )),
    ];
    let update = (
        prop::sample::select(VALUE_COLUMNS.to_vec()).prop_flat_map(|c| value(c).prop_map(move |v| format!("{c} = {v}"))),
        any::<bool>(),
        condition(),
        proptest::option::of((order_column(), 1..4u32)),
    )
        .prop_map(|(set, extra, cond, order)| {
            let extra = if extra {
                ", code = IF(flag, 'yes', 'no'), medium_t = CONCAT(name, '-', IFNULL(num, 0)), num = num + 1"
            } else {
                ""
            };
            let tail = order.map(|(o, n)| format!(" ORDER BY {o} LIMIT {n}")).unwrap_or_default();
            format!("UPDATE kinds SET {set}{extra} WHERE {cond}{tail}")
        });
    let delete = prop_oneof![
        (condition(), order_column(), 1..3u32).prop_map(|(c, o, n)| format!("DELETE FROM kinds WHERE {c} ORDER BY {o} LIMIT {n}")),
        Just("DELETE FROM events WHERE msg IS NULL LIMIT 1".to_string()),
        Just("DELETE e FROM events e JOIN kinds k ON k.id = e.kind_id WHERE k.flag = 1".to_string()),
        Just("UPDATE kinds k JOIN events e ON e.kind_id = k.id SET k.num = 7, k.flag = 0 WHERE e.msg IS NOT NULL".to_string()),
    ];
    let select = prop_oneof![
        (prop::sample::select(VALUE_COLUMNS.to_vec()), condition(), order_column(), 0..3u32, 1..4u32)
            .prop_map(|(c, cond, o, a, b)| format!("SELECT id, name, {c} FROM kinds WHERE {cond} ORDER BY {o} LIMIT {a}, {b}")),
        Just("SELECT flag, COUNT(*), GROUP_CONCAT(name ORDER BY id SEPARATOR ', ') FROM kinds GROUP BY flag".to_string()),
        Just("SELECT k.name, COUNT(e.id) AS n FROM kinds k LEFT JOIN events e ON e.kind_id = k.id GROUP BY k.name ORDER BY n DESC, k.name LIMIT 3".to_string()),
        Just("SELECT * FROM kinds WHERE id IN (SELECT kind_id FROM events) FOR UPDATE".to_string()),
        Just("SELECT CONCAT(name, ':', flag), IF(num > 5, 'big', 'small'), LENGTH(body), UNIX_TIMESTAMP(seen) FROM kinds".to_string()),
    ];
    prop_oneof![
        4 => insert,
        1 => upsert_kinds,
        1 => upsert_counters,
        1 => replace,
        3 => update,
        1 => delete,
        2 => select,
    ]
    .boxed()
}
