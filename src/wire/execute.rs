//! COM_STMT_EXECUTE parameters, decoded so a prepared write can be mirrored as
//! text. Every read is bounds-checked and type bytes are whitelisted: a
//! malformed packet is an error, never a panic.

use super::buf::Reader;
use super::io::WireError;

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    /// year, month, day, hour, minute, second, microsecond
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    Date(u16, u8, u8),
    /// negative, days, hours, minutes, seconds, microseconds
    Time(bool, u32, u8, u8, u8, u32),
    /// Sent earlier with COM_STMT_SEND_LONG_DATA.
    LongData,
}

/// A parameter's declared type: the type byte and the unsigned flag.
pub type ParamType = (u8, bool);

/// Decodes the parameters of a COM_STMT_EXECUTE `payload` for a statement with
/// `num_params` parameters. `types` holds the types bound by the previous
/// execute (a client may omit them) and is updated when new ones are sent.
/// `long_data[i]` is true for parameters sent with SEND_LONG_DATA.
pub fn parse_params(
    payload: &[u8],
    num_params: usize,
    types: &mut Vec<ParamType>,
    long_data: &[bool],
) -> Result<Vec<ParamValue>, WireError> {
    let malformed = || WireError::Malformed("truncated COM_STMT_EXECUTE");
    let mut r = Reader::new(payload);
    r.u8().ok_or_else(malformed)?; // command
    r.u32().ok_or_else(malformed)?; // statement id
    r.u8().ok_or_else(malformed)?; // cursor flags
    r.u32().ok_or_else(malformed)?; // iteration count
    if num_params == 0 {
        return Ok(Vec::new());
    }
    let null_bitmap = r
        .take(num_params.div_ceil(8))
        .ok_or_else(malformed)?
        .to_vec();
    if r.u8().ok_or_else(malformed)? == 1 {
        types.clear();
        for _ in 0..num_params {
            let t = r.u8().ok_or_else(malformed)?;
            let flags = r.u8().ok_or_else(malformed)?;
            types.push((t, flags & 0x80 != 0));
        }
    }
    if types.len() != num_params {
        return Err(WireError::Malformed(
            "COM_STMT_EXECUTE without parameter types",
        ));
    }
    let mut values = Vec::with_capacity(num_params);
    for (i, &(t, unsigned)) in types.iter().enumerate() {
        if null_bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(ParamValue::Null);
            continue;
        }
        if long_data.get(i).copied().unwrap_or(false) {
            values.push(ParamValue::LongData);
            continue;
        }
        values.push(read_value(&mut r, t, unsigned).ok_or_else(malformed)??);
    }
    Ok(values)
}

/// Records the parameter types a COM_STMT_EXECUTE binds, if it sends them:
/// a later execute may omit them, and decoding it needs them.
pub fn remember_types(payload: &[u8], num_params: usize, types: &mut Vec<ParamType>) {
    if num_params == 0 {
        return;
    }
    let mut r = Reader::new(payload);
    let bound = r
        .take(1 + 4 + 1 + 4 + num_params.div_ceil(8))
        .and_then(|_| r.u8());
    if bound != Some(1) {
        return;
    }
    let mut fresh = Vec::with_capacity(num_params);
    for _ in 0..num_params {
        match (r.u8(), r.u8()) {
            (Some(t), Some(flags)) => fresh.push((t, flags & 0x80 != 0)),
            _ => return,
        }
    }
    *types = fresh;
}

fn read_value(r: &mut Reader<'_>, t: u8, unsigned: bool) -> Option<Result<ParamValue, WireError>> {
    let int = |v: i64, u: u64| {
        if unsigned {
            ParamValue::UInt(u)
        } else {
            ParamValue::Int(v)
        }
    };
    Some(Ok(match t {
        0x06 => ParamValue::Null,
        0x01 => {
            let b = r.u8()?;
            int(i64::from(b as i8), u64::from(b))
        }
        0x02 | 0x0d => {
            let v = r.u16()?;
            int(i64::from(v as i16), u64::from(v))
        }
        0x03 | 0x09 => {
            let v = r.u32()?;
            int(i64::from(v as i32), u64::from(v))
        }
        0x08 => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            int(i64::from_le_bytes(a), u64::from_le_bytes(a))
        }
        0x04 => ParamValue::Float(f32::from_bits(r.u32()?)),
        0x05 => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            ParamValue::Double(f64::from_le_bytes(a))
        }
        0x0a | 0x07 | 0x0c => {
            let len = r.u8()?;
            let mut f = [0u32; 7];
            if len >= 4 {
                f[0] = u32::from(r.u16()?);
                f[1] = u32::from(r.u8()?);
                f[2] = u32::from(r.u8()?);
            }
            if len >= 7 {
                f[3] = u32::from(r.u8()?);
                f[4] = u32::from(r.u8()?);
                f[5] = u32::from(r.u8()?);
            }
            if len >= 11 {
                f[6] = r.u32()?;
            }
            if !matches!(len, 0 | 4 | 7 | 11) {
                return Some(Err(WireError::Malformed("bad DATETIME parameter length")));
            }
            if t == 0x0a {
                ParamValue::Date(f[0] as u16, f[1] as u8, f[2] as u8)
            } else {
                ParamValue::DateTime(
                    f[0] as u16,
                    f[1] as u8,
                    f[2] as u8,
                    f[3] as u8,
                    f[4] as u8,
                    f[5] as u8,
                    f[6],
                )
            }
        }
        0x0b => {
            let len = r.u8()?;
            let (mut neg, mut days, mut h, mut m, mut s, mut us) = (false, 0, 0, 0, 0, 0);
            if len >= 8 {
                neg = r.u8()? == 1;
                days = r.u32()?;
                h = r.u8()?;
                m = r.u8()?;
                s = r.u8()?;
            }
            if len >= 12 {
                us = r.u32()?;
            }
            if !matches!(len, 0 | 8 | 12) {
                return Some(Err(WireError::Malformed("bad TIME parameter length")));
            }
            ParamValue::Time(neg, days, h, m, s, us)
        }
        0x00 | 0x0f | 0x10 | 0xf5..=0xff => ParamValue::Bytes(r.lenenc_bytes()?.to_vec()),
        _ => return Some(Err(WireError::Malformed("unsupported parameter type"))),
    }))
}

impl ParamValue {
    /// The value as a MySQL literal. `backslash_escapes` is false under
    /// sql_mode NO_BACKSLASH_ESCAPES. `None` for long data, which is not kept.
    pub fn to_literal(&self, backslash_escapes: bool) -> Option<String> {
        Some(match self {
            ParamValue::Null => "NULL".into(),
            ParamValue::Int(v) => v.to_string(),
            ParamValue::UInt(v) => v.to_string(),
            ParamValue::Float(v) if v.is_finite() => format!("{v:e}"),
            ParamValue::Double(v) if v.is_finite() => format!("{v:e}"),
            ParamValue::Float(_) | ParamValue::Double(_) => "NULL".into(),
            ParamValue::Bytes(b) => crate::sql::pin::quote_string(b, backslash_escapes),
            ParamValue::Date(y, mo, d) => format!("'{y:04}-{mo:02}-{d:02}'"),
            ParamValue::DateTime(y, mo, d, h, mi, s, us) => {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'")
            }
            ParamValue::Time(neg, days, h, m, s, us) => {
                let hours = u64::from(*days) * 24 + u64::from(*h);
                format!(
                    "'{}{hours:02}:{m:02}:{s:02}.{us:06}'",
                    if *neg { "-" } else { "" }
                )
            }
            ParamValue::LongData => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execute(types: &[(u8, u8)], nulls: u8, values: &[u8]) -> Vec<u8> {
        let mut p = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, nulls, 1];
        for (t, f) in types {
            p.extend_from_slice(&[*t, *f]);
        }
        p.extend_from_slice(values);
        p
    }

    #[test]
    fn decodes_common_types() {
        let mut vals = vec![];
        vals.extend_from_slice(&(-5i64).to_le_bytes());
        vals.extend_from_slice(&[0xff]); // unsigned tiny 255
        vals.extend_from_slice(&[3, b'a', b'\'', b'b']);
        vals.extend_from_slice(&[11, 0xe8, 0x07, 2, 29, 23, 59, 58, 0xe8, 0x03, 0, 0]);
        vals.extend_from_slice(&[8, 1, 1, 0, 0, 0, 2, 3, 4]);
        vals.extend_from_slice(&1.5f64.to_le_bytes());
        let p = execute(
            &[
                (0x08, 0),
                (0x01, 0x80),
                (0xfd, 0),
                (0x0c, 0),
                (0x0b, 0),
                (0x05, 0),
                (0x06, 0),
            ],
            0,
            &vals,
        );
        let mut types = vec![];
        let v = parse_params(&p, 7, &mut types, &[]).unwrap();
        assert_eq!(v[0], ParamValue::Int(-5));
        assert_eq!(v[1], ParamValue::UInt(255));
        assert_eq!(v[2].to_literal(true).unwrap(), "'a''b'");
        assert_eq!(
            v[3].to_literal(true).unwrap(),
            "'2024-02-29 23:59:58.001000'"
        );
        assert_eq!(v[4].to_literal(true).unwrap(), "'-26:03:04.000000'");
        assert_eq!(v[5].to_literal(true).unwrap(), "1.5e0");
        assert_eq!(v[6], ParamValue::Null);
        assert_eq!(types.len(), 7);
    }

    #[test]
    fn null_bitmap_and_reused_types() {
        let p = execute(&[(0x03, 0), (0x03, 0)], 0b01, &7i32.to_le_bytes());
        let mut types = vec![];
        let v = parse_params(&p, 2, &mut types, &[]).unwrap();
        assert_eq!(v, vec![ParamValue::Null, ParamValue::Int(7)]);
        // Second execute without types (new_params_bound_flag = 0).
        let mut p2 = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        p2.extend_from_slice(&1i32.to_le_bytes());
        p2.extend_from_slice(&2i32.to_le_bytes());
        assert_eq!(
            parse_params(&p2, 2, &mut types, &[]).unwrap(),
            vec![ParamValue::Int(1), ParamValue::Int(2)]
        );
    }

    #[test]
    fn malformed_is_an_error() {
        let p = execute(&[(0x08, 0)], 0, &[1, 2]);
        assert!(parse_params(&p, 1, &mut vec![], &[]).is_err());
        let p = execute(&[(0x11, 0)], 0, &[0; 8]); // TIMESTAMP2 is not a wire type
        assert!(parse_params(&p, 1, &mut vec![], &[]).is_err());
        assert!(parse_params(&[0x17, 1], 1, &mut vec![], &[]).is_err());
        let mut none = vec![];
        assert!(parse_params(&[0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], 1, &mut none, &[]).is_err());
        for cut in 0..20 {
            let p = execute(
                &[(0x0c, 0)],
                0,
                &[11, 0xe8, 0x07, 2, 29, 23, 59, 58, 0, 0, 0, 0],
            );
            let _ = parse_params(&p[..cut.min(p.len())], 1, &mut vec![], &[]);
        }
    }
}
