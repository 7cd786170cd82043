//! Writes MySQL responses from a running PostgreSQL statement: the result
//! set header once the first row (or the end) is known, each row as it
//! arrives, then the terminator; or one OK packet. Only one row is held at a
//! time, and the client buffer is flushed whenever PostgreSQL has nothing
//! ready, so a result of any size streams in bounded memory.

use futures_util::{FutureExt, StreamExt};
use tokio_postgres::{Client, Row, Statement};

use super::columns::{ColumnDef, ColumnPlan};
use super::errors::{map_error_in, ErrorContext};
use super::render::{self, RenderError};
use super::{ClientContext, Request, Summary};
use crate::backend::postgres::{RawValue, TextParam};
use crate::value::pg_binary as values;
use crate::wire::buf::{put_lenenc_bytes, put_lenenc_int};
use crate::wire::io::{PacketIo, WireError};
use crate::wire::packets::{self, ServerError};

pub(super) enum RunError {
    /// PostgreSQL refused the statement before anything was written.
    Start(tokio_postgres::Error),
    /// The connection broke mid-response; an ERR was written.
    Lost(tokio_postgres::Error),
    Client(WireError),
}

impl From<WireError> for RunError {
    fn from(e: WireError) -> Self {
        RunError::Client(e)
    }
}

/// How to answer: the planned columns, the request, the client, and the
/// status flags to report if the statement succeeds.
pub(super) struct Reply<'a> {
    pub plans: &'a [ColumnPlan],
    pub req: &'a Request<'a>,
    pub cx: &'a ClientContext<'a>,
    pub status: u16,
}

pub(super) async fn run(
    client: &Client,
    stmt: &Statement,
    reply: &Reply<'_>,
    out: &mut PacketIo,
    seq: u8,
) -> Result<Summary, RunError> {
    let params = reply.req.params.iter().map(|p| TextParam(*p));
    let stream = client
        .query_raw(stmt, params)
        .await
        .map_err(RunError::Start)?;
    futures_util::pin_mut!(stream);
    // Wait for the first row: an error before it is a plain ERR, no header.
    let first = match stream.next().await {
        Some(Err(e)) => return Err(RunError::Start(e)),
        other => other,
    };
    if reply.plans.is_empty() || reply.req.returning_id {
        let mut rows = 0u64;
        let mut last_insert_id = 0;
        let mut item = first;
        while let Some(next) = item {
            match next {
                Ok(row) => {
                    if rows == 0 && reply.req.returning_id {
                        last_insert_id = first_id(&row, reply.plans).unwrap_or(0);
                    }
                    rows += 1;
                }
                Err(e) => return mid_error(client, e, reply, out, seq),
            }
            item = stream.next().await;
        }
        let affected = stream.rows_affected().unwrap_or(rows);
        let info = info_for(reply.req.sql, affected);
        let ok = ok_payload(packets::OK, affected, last_insert_id, reply.status, &info);
        out.write_packet(seq, &ok);
        return Ok(Summary {
            affected_rows: affected,
            last_insert_id,
            status: reply.status,
            ..Default::default()
        });
    }

    let mut seq = write_header(reply, out, seq).await?;
    let mut buf = Vec::with_capacity(256);
    let mut scratch = Vec::with_capacity(64);
    let mut rows = 0u64;
    let mut item = first;
    while let Some(next) = item {
        let row = match next {
            Ok(row) => row,
            Err(e) => return mid_error(client, e, reply, out, seq),
        };
        let cell = |i: usize| row.try_get::<_, RawValue<'_>>(i).ok().map(|r| r.0);
        if let Err((i, e)) = encode_row(cell, reply.plans, reply.req.binary, &mut buf, &mut scratch)
        {
            let err = cell_error(&reply.plans[i].def, e, rows + 1);
            out.write_packet(seq, &err.encode());
            return Ok(Summary {
                rows,
                error: Some(err),
                ..Default::default()
            });
        }
        seq = out.write_packet_bounded(seq, &buf).await?;
        rows += 1;
        item = match stream.next().now_or_never() {
            Some(i) => i,
            None => {
                // PostgreSQL has nothing ready: don't sit on what we have.
                out.flush().await?;
                stream.next().await
            }
        };
    }
    let end = if reply.cx.deprecate_eof() {
        ok_payload(packets::EOF, 0, 0, reply.status, "")
    } else {
        eof_payload(reply.status)
    };
    out.write_packet(seq, &end);
    Ok(Summary {
        rows,
        status: reply.status,
        ..Default::default()
    })
}

/// Column count, definitions and (without CLIENT_DEPRECATE_EOF) an EOF.
async fn write_header(reply: &Reply<'_>, out: &mut PacketIo, seq: u8) -> Result<u8, WireError> {
    let mut buf = Vec::with_capacity(64);
    put_lenenc_int(&mut buf, reply.plans.len() as u64);
    let mut seq = out.write_packet(seq, &buf);
    let defs: Vec<&ColumnDef> = reply.plans.iter().map(|p| &p.def).collect();
    seq = write_defs(&defs, reply, out, seq).await?;
    Ok(seq)
}

async fn write_defs(
    defs: &[&ColumnDef],
    reply: &Reply<'_>,
    out: &mut PacketIo,
    mut seq: u8,
) -> Result<u8, WireError> {
    let mut buf = Vec::with_capacity(64);
    for def in defs {
        buf.clear();
        def.encode(reply.cx.extended_metadata(), &mut buf);
        seq = out.write_packet_bounded(seq, &buf).await?;
    }
    if !reply.cx.deprecate_eof() {
        seq = out.write_packet(seq, &eof_payload(reply.status));
    }
    Ok(seq)
}

/// COM_STMT_PREPARE's answer: PREPARE_OK, parameter definitions, column
/// definitions (none when the rows become an insert id).
pub(super) async fn prepare_ok(
    statement_id: u32,
    params: usize,
    reply: &Reply<'_>,
    out: &mut PacketIo,
    seq: u8,
) -> Result<(), WireError> {
    let params = u16::try_from(params).unwrap_or(u16::MAX);
    let columns: Vec<&ColumnDef> = if reply.req.returning_id {
        Vec::new()
    } else {
        reply.plans.iter().map(|p| &p.def).collect()
    };
    let mut p = vec![packets::OK];
    p.extend_from_slice(&statement_id.to_le_bytes());
    p.extend_from_slice(&(columns.len() as u16).to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    let mut seq = out.write_packet(seq, &p);
    if params > 0 {
        let param = ColumnDef::param();
        let defs = vec![&param; usize::from(params)];
        seq = write_defs(&defs, reply, out, seq).await?;
    }
    if !columns.is_empty() {
        write_defs(&columns, reply, out, seq).await?;
    }
    Ok(())
}

/// One row in the text or binary protocol, into `buf`; `cell(i)` gives
/// column i's raw value (`Some(None)` is NULL). On failure, the index of the
/// column that could not be sent.
fn encode_row<'r>(
    cell: impl Fn(usize) -> Option<Option<&'r [u8]>>,
    plans: &[ColumnPlan],
    binary: bool,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), (usize, RenderError)> {
    buf.clear();
    let bitmap = if binary {
        // Header 0x00, then a NULL bitmap whose first two bits are unused.
        buf.push(0);
        buf.resize(1 + (plans.len() + 9) / 8, 0);
        Some(1)
    } else {
        None
    };
    for (i, plan) in plans.iter().enumerate() {
        let raw = cell(i).ok_or((i, RenderError::Unrepresentable("missing column")))?;
        let Some(bytes) = raw else {
            match bitmap {
                Some(start) => buf[start + (i + 2) / 8] |= 1 << ((i + 2) % 8),
                None => buf.push(0xfb),
            }
            continue;
        };
        let value = values::decode(plan.family, bytes)
            .map_err(|e| (i, RenderError::Unrepresentable(e.0)))?;
        if binary {
            render::binary(&value, plan.out, buf, scratch).map_err(|e| (i, e))?;
        } else {
            scratch.clear();
            render::text(&value, plan.out, scratch).map_err(|e| (i, e))?;
            put_lenenc_bytes(buf, scratch);
        }
    }
    Ok(())
}

fn cell_error(def: &ColumnDef, e: RenderError, row: u64) -> ServerError {
    match e {
        RenderError::OutOfRange => ServerError::new(
            1264,
            b"22003",
            format!("Out of range value for column '{}' at row {row}", def.name),
        ),
        RenderError::Unrepresentable(why) => ServerError::new(
            1105,
            b"HY000",
            format!("Cannot send column '{}' at row {row}: {why}", def.name),
        ),
    }
}

/// The identity value in the first column of a RETURNING row.
fn first_id(row: &Row, plans: &[ColumnPlan]) -> Option<u64> {
    let plan = plans.first()?;
    let raw = row.try_get::<_, RawValue<'_>>(0).ok()?.0?;
    render::as_u64(&values::decode(plan.family, raw).ok()?)
}

/// An error reported by PostgreSQL after the response began.
fn mid_error(
    client: &Client,
    e: tokio_postgres::Error,
    reply: &Reply<'_>,
    out: &mut PacketIo,
    seq: u8,
) -> Result<Summary, RunError> {
    let err = map_error_in(
        &e,
        ErrorContext {
            schema: reply.cx.schema,
        },
    );
    out.write_packet(seq, &err.encode());
    if e.as_db_error().is_none() || client.is_closed() {
        return Err(RunError::Lost(e));
    }
    Ok(Summary {
        error: Some(err),
        ..Default::default()
    })
}

/// The info text MySQL puts in the OK of a multi-row INSERT or an UPDATE.
/// PostgreSQL counts matched rows, so "Changed" repeats that number.
fn info_for(sql: &str, affected: u64) -> String {
    match super::leading_words(sql, 1).first().map(String::as_str) {
        Some("INSERT") if affected > 1 => {
            format!("Records: {affected}  Duplicates: 0  Warnings: 0")
        }
        Some("UPDATE") => format!("Rows matched: {affected}  Changed: {affected}  Warnings: 0"),
        _ => String::new(),
    }
}

/// An OK packet (header 0x00, or 0xfe ending a result set under
/// CLIENT_DEPRECATE_EOF) with an optional info text. Servers write the info
/// length-encoded whether or not CLIENT_SESSION_TRACK was negotiated (the
/// protocol documentation's `string<EOF>` is not what they send).
fn ok_payload(header: u8, affected: u64, insert_id: u64, status: u16, info: &str) -> Vec<u8> {
    let mut p = vec![header];
    put_lenenc_int(&mut p, affected);
    put_lenenc_int(&mut p, insert_id);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    if !info.is_empty() {
        put_lenenc_bytes(&mut p, info.as_bytes());
    }
    p
}

fn eof_payload(status: u16) -> Vec<u8> {
    let mut p = vec![packets::EOF, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packets::OkInfo;

    #[test]
    fn ok_packets_carry_a_length_encoded_info() {
        let info = "Records: 3  Duplicates: 0  Warnings: 0";
        let p = ok_payload(0, 3, 7, 2, info);
        let ok = OkInfo::parse(&p).unwrap();
        assert_eq!((ok.affected_rows, ok.last_insert_id, ok.status), (3, 7, 2));
        assert_eq!(p[7] as usize, info.len());
        assert!(p.ends_with(info.as_bytes()));
        assert_eq!(ok_payload(0, 0, 0, 2, "").len(), 7);
    }

    #[test]
    fn info_texts() {
        assert_eq!(info_for("INSERT INTO t VALUES (1)", 1), "");
        assert_eq!(
            info_for("insert into t values (1),(2)", 2),
            "Records: 2  Duplicates: 0  Warnings: 0"
        );
        assert_eq!(
            info_for("UPDATE t SET a = 1", 0),
            "Rows matched: 0  Changed: 0  Warnings: 0"
        );
        assert_eq!(info_for("DELETE FROM t", 5), "");
    }

    fn plans(n: usize) -> Vec<ColumnPlan> {
        use super::super::columns::{plan, DefContext};
        let ctx = DefContext {
            schema: "",
            collation: 45,
        };
        (0..n)
            .map(|_| plan("c", &tokio_postgres::types::Type::INT4, -1, None, None, ctx).unwrap())
            .collect()
    }

    #[test]
    fn binary_rows_have_a_null_bitmap_offset_by_two() {
        // Ten INT columns; NULL in columns 0, 5 and 9.
        let one = 1i32.to_be_bytes();
        let cells: Vec<Option<&[u8]>> = (0..10)
            .map(|i| {
                if [0, 5, 9].contains(&i) {
                    None
                } else {
                    Some(&one[..])
                }
            })
            .collect();
        let (mut buf, mut scratch) = (Vec::new(), Vec::new());
        encode_row(
            |i| cells.get(i).copied(),
            &plans(10),
            true,
            &mut buf,
            &mut scratch,
        )
        .unwrap();
        // (10 + 7 + 2) / 8 = 2 bitmap bytes; bits 2, 7 and 11.
        assert_eq!(&buf[..3], &[0x00, 0b1000_0100, 0b0000_1000]);
        assert_eq!(buf.len(), 3 + 7 * 4);
        assert_eq!(&buf[3..7], &[1, 0, 0, 0]);
        // Text protocol: 0xfb for NULL, length-prefixed text otherwise.
        encode_row(
            |i| cells.get(i).copied(),
            &plans(10),
            false,
            &mut buf,
            &mut scratch,
        )
        .unwrap();
        assert_eq!(&buf[..4], &[0xfb, 1, b'1', 1]);
        // A truncated value names its column.
        let bad: [Option<&[u8]>; 2] = [Some(&one[..]), Some(&one[..2])];
        let e = encode_row(
            |i| bad.get(i).copied(),
            &plans(2),
            true,
            &mut buf,
            &mut scratch,
        );
        assert_eq!(e.unwrap_err().0, 1);
    }

    #[test]
    fn eof_has_warnings_then_status() {
        assert_eq!(eof_payload(0x0003), [0xfe, 0, 0, 3, 0]);
    }
}
