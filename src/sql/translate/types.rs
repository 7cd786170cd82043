//! MySQL column and CAST types → PostgreSQL types.

use sqlparser::ast::{DataType, EnumMember, ExactNumberInfo, ObjectNamePart, TimezoneInfo};

use super::{untranslatable, TranslateError};
use crate::sql::schema::ColumnKind;

/// A translated column type.
#[derive(Debug)]
pub(super) struct ColumnType {
    pub data_type: DataType,
    /// How values of the column are written (same rules as [`ColumnKind`]
    /// read from `information_schema`).
    pub kind: ColumnKind,
    /// UNSIGNED: the table gets `CHECK (col >= 0)`.
    pub non_negative: bool,
    /// Why the type is not exact, for `Translated::notes`.
    pub note: Option<String>,
}

fn plain(data_type: DataType, kind: ColumnKind) -> ColumnType {
    ColumnType {
        data_type,
        kind,
        non_negative: false,
        note: None,
    }
}

fn unsigned(data_type: DataType, kind: ColumnKind) -> ColumnType {
    ColumnType {
        non_negative: true,
        ..plain(data_type, kind)
    }
}

/// MySQL's DECIMAL defaults to (10,0) and DECIMAL(p) means (p,0); in
/// PostgreSQL a bare NUMERIC is unconstrained.
fn decimal(info: &ExactNumberInfo) -> DataType {
    DataType::Decimal(match info {
        ExactNumberInfo::None => ExactNumberInfo::PrecisionAndScale(10, 0),
        ExactNumberInfo::Precision(p) => ExactNumberInfo::PrecisionAndScale(*p, 0),
        other => *other,
    })
}

fn float(info: &ExactNumberInfo) -> (DataType, Option<String>) {
    match info {
        ExactNumberInfo::None => (DataType::Real, None),
        ExactNumberInfo::Precision(p) if *p <= 24 => (DataType::Real, None),
        ExactNumberInfo::Precision(_) => (DataType::DoublePrecision, None),
        ExactNumberInfo::PrecisionAndScale(m, d) => (
            DataType::Real,
            Some(format!(
                "FLOAT({m},{d}) became real: MySQL's rounding to {d} decimals is not kept"
            )),
        ),
    }
}

fn double(info: &ExactNumberInfo) -> Option<String> {
    match info {
        ExactNumberInfo::PrecisionAndScale(m, d) => Some(format!(
            "DOUBLE({m},{d}) became double precision: MySQL's rounding to {d} decimals is not kept"
        )),
        _ => None,
    }
}

/// Fractional-second precision: MySQL's default is 0, PostgreSQL's 6.
fn fsp(p: &Option<u64>) -> Option<u64> {
    Some(p.unwrap_or(0))
}

/// Maps a column's type. `auto_increment` keeps BIGINT UNSIGNED an integer
/// type, since identity columns cannot be numeric.
pub(super) fn column_type(
    dt: &DataType,
    auto_increment: bool,
) -> Result<ColumnType, TranslateError> {
    use ColumnKind as K;
    use DataType as D;
    let num = K::Number;
    Ok(match dt {
        D::TinyInt(Some(1)) | D::Bool | D::Boolean => plain(D::Boolean, K::Boolean),
        D::TinyInt(_) | D::SmallInt(_) | D::Int2(_) => plain(D::SmallInt(None), num),
        D::TinyIntUnsigned(_) => unsigned(D::SmallInt(None), num),
        D::SmallIntUnsigned(_) | D::Int2Unsigned(_) => unsigned(D::Integer(None), num),
        D::MediumInt(_) | D::Int(_) | D::Integer(_) | D::Int4(_) => plain(D::Integer(None), num),
        D::MediumIntUnsigned(_) => unsigned(D::Integer(None), num),
        D::IntUnsigned(_) | D::IntegerUnsigned(_) | D::Int4Unsigned(_) => {
            unsigned(D::BigInt(None), num)
        }
        D::BigInt(_) | D::Int8(_) => plain(D::BigInt(None), num),
        D::BigIntUnsigned(_) | D::Int8Unsigned(_) if auto_increment => {
            unsigned(D::BigInt(None), num)
        }
        D::BigIntUnsigned(_) | D::Int8Unsigned(_) => {
            unsigned(D::Numeric(ExactNumberInfo::PrecisionAndScale(20, 0)), num)
        }
        D::Decimal(i) | D::Numeric(i) | D::Dec(i) => plain(decimal(i), num),
        D::DecimalUnsigned(i) | D::DecUnsigned(i) => unsigned(decimal(i), num),
        D::Float(i) | D::FloatUnsigned(i) => {
            let (data_type, note) = float(i);
            ColumnType {
                data_type,
                kind: num,
                non_negative: matches!(dt, D::FloatUnsigned(_)),
                note,
            }
        }
        // MySQL's REAL is DOUBLE (unless REAL_AS_FLOAT).
        D::Double(i) | D::DoubleUnsigned(i) => ColumnType {
            data_type: D::DoublePrecision,
            kind: num,
            non_negative: matches!(dt, D::DoubleUnsigned(_)),
            note: double(i),
        },
        D::DoublePrecision | D::Real | D::Float8 => plain(D::DoublePrecision, num),
        D::DoublePrecisionUnsigned | D::RealUnsigned => unsigned(D::DoublePrecision, num),
        D::Datetime(p) => plain(D::Timestamp(fsp(p), TimezoneInfo::None), K::Temporal),
        D::Timestamp(p, _) => plain(D::Timestamp(fsp(p), TimezoneInfo::Tz), K::Timestamp),
        D::Time(p, _) => plain(D::Time(fsp(p), TimezoneInfo::None), K::Temporal),
        D::Date => plain(D::Date, K::Temporal),
        D::Enum(members, _) => {
            let names = members
                .iter()
                .map(|m| match m {
                    EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                })
                .collect();
            plain(D::Text, K::Enum(names))
        }
        D::Set(members) => plain(D::Text, K::Set(members.clone())),
        D::Text | D::TinyText | D::MediumText | D::LongText => plain(D::Text, K::Text),
        D::Char(len) | D::Character(len) => plain(D::Char(*len), K::Text),
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) | D::Nvarchar(len) => {
            plain(D::Varchar(*len), K::Text)
        }
        D::Binary(n) => plain(
            D::Bytea,
            K::Binary {
                pad_to: Some(n.unwrap_or(1) as usize),
            },
        ),
        D::Varbinary(_) | D::Blob(_) | D::TinyBlob | D::MediumBlob | D::LongBlob => {
            plain(D::Bytea, K::Binary { pad_to: None })
        }
        D::JSON => plain(D::JSONB, K::Json),
        // BIT(n) → bigint: applications use BIT as flags and write integers
        // or b'…' literals, both of which stay numbers; bit varying would
        // reject integer assignments.
        D::Bit(n) if n.unwrap_or(1) <= 63 => plain(D::BigInt(None), K::Bit),
        D::Bit(_) => plain(
            D::Numeric(ExactNumberInfo::PrecisionAndScale(20, 0)),
            K::Bit,
        ),
        D::Custom(name, _) if is_year(name) => plain(D::SmallInt(None), num),
        D::Collate(inner, _) => column_type(inner, auto_increment)?,
        D::Zerofill(_) => return Err(untranslatable("ZEROFILL column (zero-padded display)")),
        other => return Err(untranslatable(format!("column type {other}"))),
    })
}

fn is_year(name: &sqlparser::ast::ObjectName) -> bool {
    matches!(name.0.as_slice(), [ObjectNamePart::Identifier(i)] if i.value.eq_ignore_ascii_case("year"))
}

/// Maps the target of `CAST(x AS type)`. BINARY is handled by the caller.
pub(super) fn cast_type(dt: &DataType) -> Result<DataType, TranslateError> {
    use DataType as D;
    Ok(match dt {
        D::Signed | D::SignedInteger | D::Int(_) | D::Integer(_) | D::BigInt(_) => D::BigInt(None),
        D::Char(None) | D::Character(None) | D::Nvarchar(None) => D::Text,
        D::Char(Some(len)) | D::Character(Some(len)) | D::Nvarchar(Some(len)) => {
            D::Varchar(Some(*len))
        }
        D::Date => D::Date,
        D::Datetime(p) => D::Timestamp(fsp(p), TimezoneInfo::None),
        D::Time(p, _) => D::Time(fsp(p), TimezoneInfo::None),
        D::Decimal(i) | D::Numeric(i) | D::Dec(i) => decimal(i),
        D::Double(_) | D::DoublePrecision | D::Real => D::DoublePrecision,
        D::Float(i) => float(i).0,
        D::JSON => D::JSONB,
        D::Unsigned | D::UnsignedInteger => {
            return Err(untranslatable("CAST AS UNSIGNED (wraps negative values)"))
        }
        other => return Err(untranslatable(format!("CAST AS {other}"))),
    })
}
