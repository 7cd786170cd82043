//! Decoding of PostgreSQL's `pgoutput` logical-decoding messages
//! (protocol version 1, text values).
//!
//! The reverse stream reads each message as one `bytea` row of
//! `pg_logical_slot_peek_binary_changes`, so framing is done by the server;
//! this file only takes one message apart. It is pure and bounded: every read
//! checks the remaining length, and a malformed message is an error, never a
//! panic (the bytes come from a server, but a wrong version or a bug there
//! must stop the stream with a message, not the process).
//!
//! Layouts (PostgreSQL docs, "Logical Replication Message Formats"): Begin
//! `B final_lsn:i64 commit_ts:i64 xid:i32`; Commit `C flags:i8 commit_lsn:i64
//! end_lsn:i64 commit_ts:i64`; Relation `R relid:i32 namespace:str name:str
//! identity:i8 ncols:i16 {flags:i8 name:str type:i32 typmod:i32}`; Insert
//! `I relid N tuple`; Update `U relid [K|O tuple] N tuple`; Delete
//! `D relid K|O tuple`; Truncate `T n:i32 options:i8 relid*n`; a tuple is
//! `ncols:i16 {n | u | t len:i32 bytes}`. Origin, Type and Message carry
//! nothing the applier needs and are decoded as [`Message::Other`].

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput message ({what})")]
pub struct DecodeError {
    pub what: String,
}

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError { what: what.into() }
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value that did not change (sent only as "unchanged").
    Unchanged,
    /// The value in PostgreSQL's text output format.
    Text(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelColumn {
    /// Part of the replica identity (the key, or every column with FULL).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub identity: u8,
    pub columns: Vec<RelColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: u64,
        /// Commit time, microseconds since the Unix epoch.
        commit_us: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_us: i64,
    },
    Relation(Relation),
    Insert {
        rel: u32,
        new: Vec<Datum>,
    },
    Update {
        rel: u32,
        /// `K` (key columns only, others null) or `O` (the full old row);
        /// `None` when the key did not change and identity is not FULL.
        old: Option<(u8, Vec<Datum>)>,
        new: Vec<Datum>,
    },
    Delete {
        rel: u32,
        old: (u8, Vec<Datum>),
    },
    Truncate {
        rels: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    /// A logical message written with `pg_logical_emit_message` (the proxy's
    /// DDL markers, prefix [`crate::stream::reverse::ddl::PREFIX`]).
    Logical {
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: Vec<u8>,
    },
    /// Origin, Type, stream messages: nothing to apply.
    Other(u8),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad(format!("truncated {what}")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn i16(&mut self, what: &str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(self.i64(what)? as u64)
    }

    /// A NUL-terminated string.
    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad(format!("unterminated {what}")))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.i16("tuple column count")?;
        let n = usize::try_from(n).map_err(|_| bad("negative column count"))?;
        let mut out = Vec::with_capacity(n.min(1600));
        for _ in 0..n {
            out.push(match self.u8("tuple column kind")? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = self.i32("value length")?;
                    let len = usize::try_from(len).map_err(|_| bad("negative value length"))?;
                    Datum::Text(self.take(len, "value")?.to_vec())
                }
                b'b' => return Err(bad("binary tuple values (the slot must use text)")),
                k => return Err(bad(format!("tuple column kind {:?}", k as char))),
            });
        }
        Ok(out)
    }
}

fn commit_us(pg_us: i64) -> i64 {
    pg_us.saturating_add(PG_EPOCH_OFFSET_US)
}

/// Decodes one message.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8("message tag")?;
    Ok(match tag {
        b'B' => Message::Begin {
            final_lsn: r.u64("begin lsn")?,
            commit_us: commit_us(r.i64("begin timestamp")?),
            xid: r.i32("xid")? as u32,
        },
        b'C' => {
            let _flags = r.u8("commit flags")?;
            Message::Commit {
                commit_lsn: r.u64("commit lsn")?,
                end_lsn: r.u64("end lsn")?,
                commit_us: commit_us(r.i64("commit timestamp")?),
            }
        }
        b'R' => {
            let id = r.i32("relation id")? as u32;
            let namespace = r.string("namespace")?;
            let name = r.string("relation name")?;
            let identity = r.u8("replica identity")?;
            let n = r.i16("column count")?;
            let n = usize::try_from(n).map_err(|_| bad("negative column count"))?;
            let mut columns = Vec::with_capacity(n.min(1600));
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                columns.push(RelColumn {
                    key: flags & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.i32("type oid")? as u32,
                    typmod: r.i32("typmod")?,
                });
            }
            Message::Relation(Relation {
                id,
                namespace,
                name,
                identity,
                columns,
            })
        }
        b'I' => {
            let rel = r.i32("relation id")? as u32;
            match r.u8("insert tuple kind")? {
                b'N' => Message::Insert {
                    rel,
                    new: r.tuple()?,
                },
                k => return Err(bad(format!("insert tuple kind {:?}", k as char))),
            }
        }
        b'U' => {
            let rel = r.i32("relation id")? as u32;
            let mut old = None;
            let mut kind = r.u8("update tuple kind")?;
            if kind == b'K' || kind == b'O' {
                old = Some((kind, r.tuple()?));
                kind = r.u8("update new tuple kind")?;
            }
            if kind != b'N' {
                return Err(bad(format!("update tuple kind {:?}", kind as char)));
            }
            Message::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.i32("relation id")? as u32;
            let kind = r.u8("delete tuple kind")?;
            if kind != b'K' && kind != b'O' {
                return Err(bad(format!("delete tuple kind {:?}", kind as char)));
            }
            Message::Delete {
                rel,
                old: (kind, r.tuple()?),
            }
        }
        b'T' => {
            let n = r.i32("truncate relation count")?;
            let n = usize::try_from(n).map_err(|_| bad("negative relation count"))?;
            let options = r.u8("truncate options")?;
            let mut rels = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                rels.push(r.i32("truncated relation id")? as u32);
            }
            Message::Truncate {
                rels,
                cascade: options & 1 == 1,
                restart_identity: options & 2 == 2,
            }
        }
        b'M' => {
            // proto_version 2 without streaming: no xid field.
            let flags = r.u8("message flags")?;
            let lsn = r.u64("message lsn")?;
            let prefix = r.string("message prefix")?;
            let n = r.i32("message length")?;
            let n = usize::try_from(n).map_err(|_| bad("negative message length"))?;
            let content = r.take(n, "message content")?.to_vec();
            Message::Logical {
                transactional: flags & 1 == 1,
                lsn,
                prefix,
                content,
            }
        }
        other => Message::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384i32.to_be_bytes());
        b.extend(b"public\0accounts\0");
        b.push(b'd');
        b.extend(2i16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(20i32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"name\0");
        b.extend(25i32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn relations_and_tuples_decode() {
        let m = decode(&relation_bytes()).expect("relation");
        let Message::Relation(r) = m else {
            panic!("not a relation: {m:?}")
        };
        assert_eq!(r.name, "accounts");
        assert_eq!(r.namespace, "public");
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_oid, 25);

        let mut u = vec![b'U'];
        u.extend(16384i32.to_be_bytes());
        u.push(b'K');
        u.extend(2i16.to_be_bytes());
        u.push(b't');
        u.extend(1i32.to_be_bytes());
        u.push(b'7');
        u.push(b'n');
        u.push(b'N');
        u.extend(2i16.to_be_bytes());
        u.push(b't');
        u.extend(1i32.to_be_bytes());
        u.push(b'8');
        u.push(b'u');
        assert_eq!(
            decode(&u).expect("update"),
            Message::Update {
                rel: 16384,
                old: Some((b'K', vec![Datum::Text(b"7".to_vec()), Datum::Null])),
                new: vec![Datum::Text(b"8".to_vec()), Datum::Unchanged],
            }
        );
    }

    #[test]
    fn begin_and_commit_carry_lsns_and_unix_time() {
        let mut b = vec![b'B'];
        b.extend(0x0001_0000_0020_u64.to_be_bytes());
        b.extend(1_000_000i64.to_be_bytes());
        b.extend(77i32.to_be_bytes());
        assert_eq!(
            decode(&b).expect("begin"),
            Message::Begin {
                final_lsn: 0x0001_0000_0020,
                commit_us: PG_EPOCH_OFFSET_US + 1_000_000,
                xid: 77
            }
        );
        let mut c = vec![b'C', 0];
        c.extend(10u64.to_be_bytes());
        c.extend(20u64.to_be_bytes());
        c.extend(0i64.to_be_bytes());
        assert_eq!(
            decode(&c).expect("commit"),
            Message::Commit {
                commit_lsn: 10,
                end_lsn: 20,
                commit_us: PG_EPOCH_OFFSET_US
            }
        );
    }

    #[test]
    fn truncated_or_hostile_input_is_an_error_not_a_panic() {
        let full = relation_bytes();
        for n in 0..full.len() {
            assert!(decode(&full[..n]).is_err(), "prefix of {n} bytes");
        }
        // A value longer than the message.
        let mut i = vec![b'I'];
        i.extend(1i32.to_be_bytes());
        i.push(b'N');
        i.extend(1i16.to_be_bytes());
        i.push(b't');
        i.extend(i32::MAX.to_be_bytes());
        assert!(decode(&i).is_err());
        // A negative count.
        let mut t = vec![b'T'];
        t.extend((-1i32).to_be_bytes());
        t.push(0);
        assert!(decode(&t).is_err());
        assert_eq!(decode(b"O").expect("origin"), Message::Other(b'O'));
        assert!(decode(b"M\x01").is_err());
    }

    #[test]
    fn logical_messages_decode() {
        let mut m = vec![b'M', 1];
        m.extend_from_slice(&0x10_u64.to_be_bytes());
        m.extend_from_slice(b"tandem.ddl\0");
        m.extend_from_slice(&3_i32.to_be_bytes());
        m.extend_from_slice(b"{x}");
        assert_eq!(
            decode(&m).expect("message"),
            Message::Logical {
                transactional: true,
                lsn: 0x10,
                prefix: "tandem.ddl".into(),
                content: b"{x}".to_vec(),
            }
        );
        m.truncate(m.len() - 1);
        assert!(decode(&m).is_err());
    }
}
