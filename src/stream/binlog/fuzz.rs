//! Property tests: no byte sequence a server (or a man in the middle) sends
//! can panic the decoder — every parser returns an error instead.

use proptest::prelude::*;

use super::event::{self, Format};
use super::rows::{Charset, ColumnCodec, RowsEvent, RowsKind};
use super::tablemap::{self, ty};
use crate::value::mysql::MysqlType;

const TYPES: &[u8] = &[
    ty::DECIMAL,
    ty::TINY,
    ty::SHORT,
    ty::LONG,
    ty::FLOAT,
    ty::DOUBLE,
    ty::NULL,
    ty::TIMESTAMP,
    ty::LONGLONG,
    ty::INT24,
    ty::DATE,
    ty::TIME,
    ty::DATETIME,
    ty::YEAR,
    ty::NEWDATE,
    ty::VARCHAR,
    ty::BIT,
    ty::TIMESTAMP2,
    ty::DATETIME2,
    ty::TIME2,
    ty::JSON,
    ty::NEWDECIMAL,
    ty::ENUM,
    ty::SET,
    ty::BLOB,
    ty::VAR_STRING,
    ty::STRING,
    ty::GEOMETRY,
    99,
];

fn codec() -> impl Strategy<Value = ColumnCodec> {
    (
        prop::sample::select(TYPES),
        any::<u16>(),
        any::<bool>(),
        prop::sample::select(vec![
            Charset::Utf8,
            Charset::Latin1,
            Charset::Binary,
            Charset::Other,
        ]),
        prop::collection::vec("[a-z]{0,3}", 0..4),
        prop::sample::select(vec![
            "int",
            "tinyint(1)",
            "decimal(10,2)",
            "float",
            "datetime(6)",
            "date",
            "time",
            "timestamp",
            "enum('a')",
            "set('a')",
            "bit(3)",
            "varbinary(3)",
            "text",
            "json",
        ]),
    )
        .prop_map(|(t, meta, unsigned, charset, members, sql)| ColumnCodec {
            ty: t,
            meta,
            unsigned,
            charset,
            members,
            value_type: MysqlType::from_column_type(sql),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn events_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), checksum: bool) {
        let format = Format { checksum, post_header: vec![8; 40] };
        if let Ok((_, body)) = event::split(&bytes, &format) {
            let _ = event::format_description(body);
            let _ = event::rotate(body);
            let _ = event::query(body, &format, false);
            let _ = event::query(body, &format, true);
        }
        let _ = event::format_description(&bytes);
        let _ = event::query(&bytes, &format, checksum);
        let _ = event::uncompress(&bytes);
        let _ = tablemap::parse(&bytes, 8);
        let _ = tablemap::parse(&bytes, 6);
    }

    #[test]
    fn rows_never_panic(
        codecs in prop::collection::vec(codec(), 1..6),
        data in prop::collection::vec(any::<u8>(), 0..120),
        kind in prop::sample::select(vec![RowsKind::Write, RowsKind::Update, RowsKind::Delete]),
    ) {
        // A well-formed rows header for these columns, then arbitrary rows.
        let n = codecs.len();
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, n as u8];
        body.extend(std::iter::repeat_n(0xff, n.div_ceil(8)));
        if kind == RowsKind::Update {
            body.extend(std::iter::repeat_n(0xff, n.div_ceil(8)));
        }
        body.extend_from_slice(&data);
        let ev = RowsEvent::parse(&body, kind, false, false, 8).unwrap();
        let _ = ev.rows(&codecs);
        let _ = RowsEvent::parse(&data, kind, true, true, 10).map(|e| e.rows(&codecs));
    }

    #[test]
    fn table_maps_with_valid_shape_never_panic(
        types in prop::collection::vec(prop::sample::select(TYPES), 1..8),
        meta in prop::collection::vec(any::<u8>(), 0..20),
        optional in prop::collection::vec(any::<u8>(), 0..60),
    ) {
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, 1, b'd', 0, 1, b't', 0, types.len() as u8];
        body.extend_from_slice(&types);
        body.push(meta.len() as u8);
        body.extend_from_slice(&meta);
        body.extend(std::iter::repeat_n(0, types.len().div_ceil(8)));
        body.extend_from_slice(&optional);
        if let Ok(map) = tablemap::parse(&body, 8) {
            let mapped = super::schema::build(&map, None);
            prop_assert_eq!(mapped.codecs.len(), types.len());
        }
    }
}
