//! Expected strings below were read from MariaDB 10.11 (`SELECT` of DOUBLE,
//! FLOAT, DATETIME(6), TIME and DECIMAL columns) or PostgreSQL 15 (intervals).

use super::*;

fn d(x: f64) -> String {
    let mut s = String::new();
    push_double(&mut s, x);
    s
}

fn f(x: f32) -> String {
    let mut s = String::new();
    push_float(&mut s, x);
    s
}

fn txt(v: Value<'_>, kind: Out) -> String {
    let mut out = Vec::new();
    text(&v, kind, &mut out).expect("renders");
    String::from_utf8(out).expect("utf8")
}

fn bin(v: Value<'_>, kind: Out) -> Vec<u8> {
    let mut out = Vec::new();
    binary(&v, kind, &mut out, &mut Vec::new()).expect("renders");
    out
}

const MICROS_PER_SEC: i64 = 1_000_000;

#[test]
fn doubles_print_like_mariadb() {
    let cases = [
        (1e300, "1e300"),
        (1e15, "1e15"),
        (1e14, "100000000000000"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (123456789012345678.0, "1.2345678901234568e17"),
        (-0.0001, "-0.0001"),
        (1e-15, "0.000000000000001"),
        (1e-16, "1e-16"),
        (1.5, "1.5"),
        (5e-324, "5e-324"),
        (-2.25e300, "-2.25e300"),
        (0.0, "0"),
        (-0.0, "-0"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
    ];
    for (x, want) in cases {
        assert_eq!(d(x), want, "{x:e}");
    }
}

#[test]
fn floats_print_six_significant_digits() {
    let cases = [
        (1.234_567_9_f32, "1.23457"),
        (1_234_567.0, "1234570"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (1e20, "1e20"),
        (123.456, "123.456"),
        (100_000.0, "100000"),
        (1.175_494_4e-38, "1.17549e-38"),
        (1.5, "1.5"),
    ];
    for (x, want) in cases {
        assert_eq!(f(x), want, "{x:e}");
    }
}

#[test]
fn fixed_decimals_for_float_m_d() {
    assert_eq!(
        txt(Value::Float8(2.5), Out::Double { decimals: Some(2) }),
        "2.50"
    );
    assert_eq!(
        txt(Value::Float4(1.25), Out::Float { decimals: Some(3) }),
        "1.250"
    );
}

#[test]
fn decimals_take_the_declared_scale() {
    assert_eq!(rescale("12.5", 2), "12.50");
    assert_eq!(rescale("1.235", 2), "1.24");
    assert_eq!(rescale("-1.235", 2), "-1.24");
    assert_eq!(rescale("9.999", 2), "10.00");
    assert_eq!(rescale("-0.001", 2), "0.00");
    assert_eq!(rescale("123", 0), "123");
    assert_eq!(rescale("0.5", 0), "1");
    assert_eq!(rescale("NaN", 2), "NaN");
    assert_eq!(rescale("", 2), "");
    let big = format!("1{}", "0".repeat(40));
    assert_eq!(rescale(&big, 1), format!("{big}.0"));
    assert_eq!(txt(Value::Int(7), Out::Decimal { scale: Some(2) }), "7.00");
}

#[test]
fn timestamps_before_2000_and_microseconds() {
    // 1969-07-20 20:17:40.123456 is -11122 days from 2000-01-01.
    let t = -11_122 * MICROS_PER_DAY + (20 * 3600 + 17 * 60 + 40) * MICROS_PER_SEC + 123_456;
    let dt = |fsp| txt(Value::Timestamp(t), Out::DateTime { fsp });
    assert_eq!(dt(6), "1969-07-20 20:17:40.123456");
    assert_eq!(dt(3), "1969-07-20 20:17:40.123");
    assert_eq!(dt(0), "1969-07-20 20:17:40");
    assert_eq!(txt(Value::Timestamp(t), Out::Date), "1969-07-20");
    assert_eq!(
        txt(Value::Timestamp(i64::MAX), Out::DateTime { fsp: 0 }),
        "infinity"
    );
    assert_eq!(txt(Value::Date(-730_120), Out::Date), "0001-12-31 BC");
    // Binary: 11 bytes with microseconds, 7 without, 4 for midnight.
    let b = bin(Value::Timestamp(t), Out::DateTime { fsp: 6 });
    assert_eq!(b, [11, 0xb1, 0x07, 7, 20, 20, 17, 40, 0x40, 0xe2, 0x01, 0]);
    let b = bin(Value::Timestamp(t), Out::DateTime { fsp: 0 });
    assert_eq!(b, [7, 0xb1, 0x07, 7, 20, 20, 17, 40]);
    assert_eq!(bin(Value::Date(0), Out::Date), [4, 0xd0, 0x07, 1, 1]);
    assert_eq!(bin(Value::Date(i32::MAX), Out::Date), [0]);
}

#[test]
fn times_and_intervals() {
    let h = 3600 * MICROS_PER_SEC;
    assert_eq!(
        txt(Value::Time(13 * h + 5), Out::Time { fsp: 6 }),
        "13:00:00.000005"
    );
    let iv = |micros, days, months| Value::Interval {
        micros,
        days,
        months,
    };
    assert_eq!(txt(iv(2 * h, 1, 0), Out::Time { fsp: 0 }), "26:00:00");
    assert_eq!(
        txt(
            iv(-(838 * h + 3599 * MICROS_PER_SEC), 0, 0),
            Out::Time { fsp: 0 }
        ),
        "-838:59:59"
    );
    // Past MySQL's TIME range or with months: PostgreSQL's own text.
    assert_eq!(txt(iv(0, 40, 0), Out::Time { fsp: 0 }), "40 days");
    assert_eq!(
        txt(
            iv(4 * h + 5 * MICROS_PER_SEC + 6, 3, 14),
            Out::Time { fsp: 6 }
        ),
        "1 year 2 mons 3 days 04:00:05.000006"
    );
    let mut s = String::new();
    push_interval(&mut s, 0, 0, 0);
    assert_eq!(s, "00:00:00");
    s.clear();
    push_interval(&mut s, h, -1, 0);
    assert_eq!(s, "-1 days +01:00:00");
    s.clear();
    push_interval(&mut s, -h, 1, -1);
    assert_eq!(s, "-1 mons +1 day -01:00:00");
    // Binary TIME: negative flag, days, h:m:s, µs.
    assert_eq!(
        bin(iv(-(2 * h + 5), -1, 0), Out::Time { fsp: 6 }),
        [12, 1, 1, 0, 0, 0, 2, 0, 0, 5, 0, 0, 0]
    );
    assert_eq!(bin(Value::Time(0), Out::Time { fsp: 0 }), [0]);
    let mut out = Vec::new();
    assert!(binary(
        &iv(0, 0, 1),
        Out::Time { fsp: 0 },
        &mut out,
        &mut Vec::new()
    )
    .is_err());
}

#[test]
fn integers_booleans_and_ranges() {
    let tiny = Out::Int {
        size: 1,
        unsigned: false,
        zerofill: None,
    };
    assert_eq!(txt(Value::Bool(true), tiny), "1");
    assert_eq!(bin(Value::Bool(false), tiny), [0]);
    assert_eq!(bin(Value::Int(-2), tiny), [0xfe]);
    let mut out = Vec::new();
    assert_eq!(
        binary(&Value::Int(300), tiny, &mut out, &mut Vec::new()),
        Err(RenderError::OutOfRange)
    );
    let ubig = Out::Int {
        size: 8,
        unsigned: true,
        zerofill: None,
    };
    let max = Value::Numeric("18446744073709551615".into());
    assert_eq!(bin(max.clone(), ubig), [0xff; 8]);
    assert_eq!(txt(max, ubig), "18446744073709551615");
    let zf = Out::Int {
        size: 4,
        unsigned: true,
        zerofill: Some(5),
    };
    assert_eq!(txt(Value::Int(42), zf), "00042");
}

#[test]
fn bits_strings_and_uuids() {
    assert_eq!(
        txt(Value::Bits(3, &[0b1010_0000]), Out::Bit { bytes: 1 }),
        "\u{5}"
    );
    assert_eq!(
        bin(Value::Bits(16, &[0x12, 0x34]), Out::Bit { bytes: 2 }),
        [2, 0x12, 0x34]
    );
    assert_eq!(bin(Value::Bool(true), Out::Bit { bytes: 1 }), [1, 1]);
    // Unsized (varbit): as many bytes as the value has bits.
    assert_eq!(
        bin(Value::Bits(12, &[0xab, 0xc0]), Out::Bit { bytes: 0 }),
        [2, 0x0a, 0xbc]
    );
    let u = [
        0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40,
        0x00,
    ];
    assert_eq!(
        txt(Value::Uuid(u), Out::Str),
        "123e4567-e89b-12d3-a456-426614174000"
    );
    assert_eq!(bin(Value::Uuid(u), Out::Bytes)[1..], u);
    assert_eq!(bin(Value::Text(b"abc"), Out::Str), [3, b'a', b'b', b'c']);
    assert_eq!(bin(Value::Bytes(&[0, 0xff]), Out::Bytes), [2, 0, 0xff]);
}
