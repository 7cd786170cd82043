//! Expected numbers are what MariaDB 10.11 sent to a utf8mb4 (collation 45)
//! client for the same column types.

use super::*;
use crate::backend::pg_mysql::hints::KeyFlags;

const CTX: DefContext<'static> = DefContext {
    schema: "app",
    collation: 45,
};

fn hinted(pg: Type, typmod: i32, column_type: &str) -> ColumnPlan {
    let hint = MysqlColumnType::parse(column_type).expect("parsable");
    plan("c", &pg, typmod, None, Some(hint), CTX).expect("plannable")
}

/// (type, length, flags, decimals, charset)
type Meta = (u8, u32, u16, u8, u16);

fn meta(p: &ColumnPlan) -> Meta {
    let d = &p.def;
    (d.column_type, d.length, d.flags, d.decimals, d.charset)
}

#[test]
fn hinted_types_match_mariadb() {
    use flag::*;
    let cases: &[(Type, i32, &str, Meta)] = &[
        (Type::BOOL, -1, "tinyint(1)", (ty::TINY, 1, 0, 0, 63)),
        (
            Type::INT8,
            -1,
            "int(10) unsigned",
            (ty::LONG, 10, UNSIGNED, 0, 63),
        ),
        (Type::INT2, -1, "tinyint(4)", (ty::TINY, 4, 0, 0, 63)),
        (Type::INT4, -1, "mediumint(9)", (ty::INT24, 9, 0, 0, 63)),
        (
            Type::NUMERIC,
            20 << 16 | 4,
            "bigint(20) unsigned",
            (ty::LONGLONG, 20, UNSIGNED, 0, 63),
        ),
        (
            Type::NUMERIC,
            (12 << 16 | 2) + 4,
            "decimal(12,2)",
            (ty::NEWDECIMAL, 14, 0, 2, 63),
        ),
        (
            Type::NUMERIC,
            -1,
            "decimal(10,0) unsigned",
            (ty::NEWDECIMAL, 10, UNSIGNED, 0, 63),
        ),
        (Type::FLOAT4, -1, "float", (ty::FLOAT, 12, 0, 31, 63)),
        (Type::FLOAT8, -1, "double(10,2)", (ty::DOUBLE, 10, 0, 2, 63)),
        (Type::BIT, 8, "bit(8)", (ty::BIT, 8, UNSIGNED, 0, 63)),
        (
            Type::TIMESTAMP,
            6,
            "datetime(6)",
            (ty::DATETIME, 26, BINARY, 6, 63),
        ),
        (
            Type::TIMESTAMPTZ,
            3,
            "timestamp(3)",
            (ty::TIMESTAMP, 23, UNSIGNED | BINARY, 3, 63),
        ),
        (Type::TIME, 2, "time(2)", (ty::TIME, 13, BINARY, 2, 63)),
        (
            Type::INT2,
            -1,
            "year(4)",
            (ty::YEAR, 4, UNSIGNED | ZEROFILL, 0, 63),
        ),
        (Type::BPCHAR, 9, "char(5)", (ty::STRING, 20, 0, 0, 45)),
        (
            Type::VARCHAR,
            54,
            "varchar(50)",
            (ty::VAR_STRING, 200, 0, 0, 45),
        ),
        (Type::BYTEA, -1, "binary(4)", (ty::STRING, 4, BINARY, 0, 63)),
        (
            Type::BYTEA,
            -1,
            "varbinary(16)",
            (ty::VAR_STRING, 16, BINARY, 0, 63),
        ),
        (
            Type::BYTEA,
            -1,
            "blob",
            (ty::BLOB, 65_535, BLOB | BINARY, 0, 63),
        ),
        (Type::TEXT, -1, "tinytext", (ty::BLOB, 1020, BLOB, 0, 45)),
        (Type::TEXT, -1, "text", (ty::BLOB, 262_140, BLOB, 0, 45)),
        (
            Type::TEXT,
            -1,
            "longtext",
            (ty::BLOB, u32::MAX, BLOB, 0, 45),
        ),
        (
            Type::TEXT,
            -1,
            "enum('a','bb')",
            (ty::STRING, 8, ENUM, 0, 45),
        ),
        (
            Type::TEXT,
            -1,
            "set('x','yy')",
            (ty::STRING, 16, SET, 0, 45),
        ),
        (
            Type::UUID,
            -1,
            "uuid",
            (ty::STRING, 144, UNSIGNED | BINARY, 0, 45),
        ),
    ];
    for (pg, typmod, ct, want) in cases {
        assert_eq!(meta(&hinted(pg.clone(), *typmod, ct)), *want, "{ct}");
    }
}

#[test]
fn mariadb_json_is_binary_longtext_with_json_format() {
    let hint = MysqlColumnType::parse("longtext")
        .unwrap()
        .with_collation(Some("utf8mb4_bin"));
    let p = plan("js", &Type::JSONB, -1, None, Some(hint), CTX).unwrap();
    assert_eq!(
        meta(&p),
        (ty::BLOB, u32::MAX, flag::BLOB | flag::BINARY, 0, 45)
    );
    assert_eq!(p.def.format, Some("json"));
    // The same without a hint.
    let n = plan("js", &Type::JSON, -1, None, None, CTX).unwrap();
    assert_eq!(meta(&n), meta(&p));
}

#[test]
fn natural_mapping_without_hints() {
    let m = |pg: Type, typmod: i32| meta(&plan("c", &pg, typmod, None, None, CTX).unwrap());
    assert_eq!(m(Type::BOOL, -1), (ty::TINY, 1, 0, 0, 63));
    assert_eq!(m(Type::INT8, -1), (ty::LONGLONG, 20, 0, 0, 63));
    assert_eq!(m(Type::OID, -1), (ty::LONG, 10, flag::UNSIGNED, 0, 63));
    assert_eq!(
        m(Type::NUMERIC, (12 << 16 | 2) + 4),
        (ty::NEWDECIMAL, 14, 0, 2, 63)
    );
    assert_eq!(m(Type::NUMERIC, -1), (ty::NEWDECIMAL, 67, 0, 38, 63));
    assert_eq!(m(Type::TEXT, -1), (ty::BLOB, u32::MAX, flag::BLOB, 0, 45));
    assert_eq!(m(Type::VARCHAR, 14), (ty::VAR_STRING, 40, 0, 0, 45));
    assert_eq!(
        m(Type::TIMESTAMP, -1),
        (ty::DATETIME, 26, flag::BINARY, 6, 63)
    );
    assert_eq!(
        m(Type::TIMESTAMP, 0),
        (ty::DATETIME, 19, flag::BINARY, 0, 63)
    );
    assert_eq!(m(Type::INTERVAL, -1), (ty::TIME, 17, flag::BINARY, 6, 63));
    assert_eq!(
        m(Type::BYTEA, -1),
        (ty::BLOB, u32::MAX, flag::BLOB | flag::BINARY, 0, 63)
    );
    assert_eq!(m(Type::UUID, -1), (ty::STRING, 144, 0, 0, 45));
    // A utf8mb3 client sees three bytes per character.
    let p = plan(
        "c",
        &Type::VARCHAR,
        14,
        None,
        None,
        DefContext {
            schema: "",
            collation: 33,
        },
    );
    assert_eq!(p.unwrap().def.length, 30);
}

#[test]
fn incompatible_hints_fall_back_to_the_natural_type() {
    // A DATETIME hint on a text column: the text column wins.
    let p = hinted(Type::TEXT, -1, "datetime");
    assert_eq!(p.def.column_type, ty::BLOB);
    assert_eq!(p.out, Out::Str);
    // Unsupported PostgreSQL types are reported by name.
    let err = plan("c", &Type::INT4_ARRAY, -1, None, None, CTX).unwrap_err();
    assert_eq!(err, "_int4");
    assert!(plan("c", &Type::POINT, -1, None, None, CTX).is_err());
}

#[test]
fn catalog_attrs_become_flags_and_names() {
    let origin = Origin {
        table: "t".into(),
        column: "id".into(),
        attrs: ColumnAttrs {
            not_null: true,
            keys: KeyFlags {
                primary: true,
                part: true,
                ..Default::default()
            },
            auto_increment: true,
            has_default: false,
        },
    };
    let p = plan("x", &Type::INT4, -1, Some(&origin), None, CTX).unwrap();
    use flag::*;
    assert_eq!(p.def.flags, NOT_NULL | PRI_KEY | AUTO_INCREMENT | PART_KEY);
    assert_eq!(
        (
            p.def.schema.as_str(),
            p.def.table.as_str(),
            p.def.org_table.as_str()
        ),
        ("app", "t", "t")
    );
    assert_eq!((p.def.name.as_str(), p.def.org_name.as_str()), ("x", "id"));
    // NOT NULL without a default and not auto-increment: NO_DEFAULT_VALUE.
    let mut o2 = origin.clone();
    o2.attrs = ColumnAttrs {
        not_null: true,
        ..Default::default()
    };
    let p = plan("c", &Type::INT4, -1, Some(&o2), None, CTX).unwrap();
    assert_eq!(p.def.flags, NOT_NULL | NO_DEFAULT_VALUE);
}

#[test]
fn column_definition_bytes() {
    let mut def = hinted(Type::NUMERIC, (12 << 16 | 2) + 4, "decimal(12,2)").def;
    def.schema = "db".into();
    def.table = "t".into();
    def.org_table = "t".into();
    def.org_name = "c".into();
    let mut out = Vec::new();
    def.encode(false, &mut out);
    let mut want = b"\x03def\x02db\x01t\x01t\x01c\x01c\x0c".to_vec();
    want.extend_from_slice(&[63, 0, 14, 0, 0, 0, 0xf6, 0, 0, 2, 0, 0]);
    assert_eq!(out, want);
    // With MariaDB extended metadata: an empty block, or the json format.
    out.clear();
    def.encode(true, &mut out);
    assert_eq!(out[15], 0);
    assert_eq!(out.len(), want.len() + 1);
    def.format = Some("json");
    out.clear();
    def.encode(true, &mut out);
    assert_eq!(&out[15..22], b"\x06\x01\x04json");
    // A parameter placeholder as MariaDB describes it.
    out.clear();
    ColumnDef::param().encode(false, &mut out);
    assert_eq!(
        out,
        b"\x03def\x00\x00\x00\x01?\x00\x0c\x3f\x00\x00\x00\x00\x00\x06\x80\x00\x00\x00\x00"
    );
}
