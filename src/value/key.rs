//! Keys: the order keyset scans walk in, and a lossless text form for
//! checkpoints.

use std::cmp::Ordering;

use super::{pg, Value};

/// A total order on key values that matches how the keyset scans order
/// them on both engines: numbers numerically, temporal values in time,
/// strings and binary strings by their bytes (the scans order text keys by
/// UTF-8 bytes on both sides), NULL first.
pub fn key_cmp(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    match (a, b) {
        (Null, Null) => Ordering::Equal,
        (Null, _) => Ordering::Less,
        (_, Null) => Ordering::Greater,
        (Int(x), Int(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (Bool(x), Int(y)) => (*x as i128).cmp(y),
        (Int(x), Bool(y)) => x.cmp(&(*y as i128)),
        (Int(x), Decimal(d)) => decimal_cmp(&x.to_string(), d),
        (Decimal(d), Int(y)) => decimal_cmp(d, &y.to_string()),
        (Decimal(x), Decimal(y)) => decimal_cmp(x, y),
        (Float(x), Float(y)) => x.total_cmp(y),
        (Date(x), Date(y)) => x.cmp(y),
        (Time(x), Time(y)) => x.cmp(y),
        (Timestamp(x), Timestamp(y)) => x.cmp(y),
        (Json(x), Json(y)) => x.cmp(y),
        _ => match (a.as_bytes(), b.as_bytes()) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => a.kind_rank().cmp(&b.kind_rank()),
        },
    }
}

impl Value {
    fn kind_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) | Value::Int(_) | Value::Decimal(_) | Value::Float(_) => 1,
            Value::Date(_) => 2,
            Value::Time(_) => 3,
            Value::Timestamp(_) => 4,
            Value::Text(_) | Value::Bytes(_) => 5,
            Value::Json(_) => 6,
        }
    }
}

/// Compares canonical decimal strings numerically (`NaN`/`Infinity` sort
/// after every number, as in PostgreSQL).
fn decimal_cmp(a: &str, b: &str) -> Ordering {
    fn rank(s: &str) -> i8 {
        match s {
            "-Infinity" => -1,
            "Infinity" => 1,
            "NaN" => 2,
            _ => 0,
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    if ra != 0 || rb != 0 {
        return ra.cmp(&rb);
    }
    let (neg_a, a) = a.strip_prefix('-').map_or((false, a), |r| (true, r));
    let (neg_b, b) = b.strip_prefix('-').map_or((false, b), |r| (true, r));
    let magnitude = |x: &str, y: &str| {
        let (xi, xf) = x.split_once('.').unwrap_or((x, ""));
        let (yi, yf) = y.split_once('.').unwrap_or((y, ""));
        xi.len()
            .cmp(&yi.len())
            .then_with(|| xi.cmp(yi))
            .then_with(|| xf.cmp(yf))
    };
    match (neg_a, neg_b) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude(a, b),
        (true, true) => magnitude(b, a),
    }
}

/// Values as tagged JSON (`[["i","42"],["s","abc"]]`), lossless, for
/// storing keys (backfill checkpoints) as text.
pub fn to_tagged_json(values: &[Value]) -> String {
    use serde_json::json;
    let items: Vec<serde_json::Value> = values
        .iter()
        .map(|v| match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => json!(["b", b]),
            Value::Int(i) => json!(["i", i.to_string()]),
            Value::Decimal(d) => json!(["n", d.as_ref()]),
            Value::Float(f) => json!(["f", f.to_bits().to_string()]),
            Value::Date(d) => json!(["D", d]),
            Value::Time(t) => json!(["T", t]),
            Value::Timestamp(t) => json!(["S", t]),
            Value::Text(s) => json!(["s", s]),
            Value::Bytes(b) => json!([
                "x",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ]),
            Value::Json(j) => json!(["j", j]),
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// The inverse of [`to_tagged_json`]; `None` if the text is not such a list.
pub fn from_tagged_json(text: &str) -> Option<Vec<Value>> {
    let items: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    items
        .into_iter()
        .map(|item| {
            if item.is_null() {
                return Some(Value::Null);
            }
            let pair = item.as_array()?;
            let tag = pair.first()?.as_str()?;
            let v = pair.get(1)?;
            Some(match tag {
                "b" => Value::Bool(v.as_bool()?),
                "i" => Value::Int(v.as_str()?.parse().ok()?),
                "n" => Value::Decimal(v.as_str()?.into()),
                "f" => Value::Float(f64::from_bits(v.as_str()?.parse().ok()?)),
                "D" => Value::Date(i32::try_from(v.as_i64()?).ok()?),
                "T" => Value::Time(v.as_i64()?),
                "S" => Value::Timestamp(v.as_i64()?),
                "s" => Value::Text(v.as_str()?.to_string()),
                "x" => Value::Bytes(pg::parse_hex(v.as_str()?)?),
                "j" => Value::Json(v.as_str()?.to_string()),
                _ => return None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Value {
        Value::parse_decimal(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn key_order_is_numeric_temporal_and_bytewise() {
        let mut keys = [
            dec("10.5"),
            Value::Int(-3),
            dec("-3.25"),
            Value::Int(10),
            dec("123456789012345678901234567890123456789012"),
            dec("-123456789012345678901234567890123456789012"),
        ];
        keys.sort_by(key_cmp);
        let shown: Vec<String> = keys.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            shown,
            [
                "-123456789012345678901234567890123456789012",
                "-3.25",
                "-3",
                "10",
                "10.5",
                "123456789012345678901234567890123456789012"
            ]
        );
        assert_eq!(
            key_cmp(&Value::Text("B".into()), &Value::Text("a".into())),
            Ordering::Less
        );
        assert_eq!(
            key_cmp(&Value::Bytes(b"a".to_vec()), &Value::Bytes(b"a\0".to_vec())),
            Ordering::Less
        );
        assert_eq!(key_cmp(&Value::Date(-1), &Value::Date(3)), Ordering::Less);
    }

    #[test]
    fn tagged_json_round_trips() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-(u64::MAX as i128)),
            dec("1.25"),
            Value::float(-2.5e-300),
            Value::Date(-5),
            Value::Time(-1),
            Value::Timestamp(1_700_000_000_000_000),
            Value::Text("é\"'\n".into()),
            Value::Bytes(vec![0, 255, 16]),
            Value::json(r#"{"a":1}"#),
        ];
        let text = to_tagged_json(&values);
        let back = from_tagged_json(&text).expect("parses");
        assert_eq!(back.len(), values.len());
        for (a, b) in values.iter().zip(&back) {
            assert_eq!(a, b);
            assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b));
        }
        assert!(from_tagged_json("[[\"?\", 1]]").is_none());
        assert!(from_tagged_json("nope").is_none());
    }
}
