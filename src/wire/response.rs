//! Finds where a backend's response to one command ends, packet by packet,
//! without decoding rows: the relay copies packets verbatim and asks this
//! walker after each one whether more are coming.

use super::buf::Reader;
use super::io::WireError;
use super::packets::{self, OkInfo};
use super::{StatusFlags, MAX_PAYLOAD};

/// The shape of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR or result set(s): COM_QUERY, COM_STMT_EXECUTE.
    Results,
    /// COM_STMT_PREPARE: PREPARE_OK + parameter and column definitions, or ERR.
    Prepare,
    /// COM_STMT_FETCH: rows then a terminator, or ERR.
    Fetch,
    /// COM_FIELD_LIST: column definitions then a terminator, or ERR.
    FieldList,
    /// Exactly one packet (OK, ERR, EOF or a string).
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    More,
    Done,
}

/// What COM_STMT_PREPARE answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    /// Parameter and column definitions (and their EOFs) still to come.
    PrepareDefs(u32),
    /// LOAD DATA LOCAL: the server asked for the file; the client's file
    /// packets go to the server before its answer comes.
    FileRequested,
    Done,
}

#[derive(Debug)]
pub struct ResponseWalker {
    expect: Expect,
    deprecate_eof: bool,
    state: State,
    /// The previous physical packet was full-size: the next one continues it.
    continuation: bool,
    /// Status flags from the last OK/EOF seen (transaction and autocommit state).
    pub status: Option<u16>,
    /// The last OK packet (affected rows, insert id, warnings).
    pub ok: Option<OkInfo>,
    /// Error code, when the response was (or ended with) an ERR packet.
    pub error: Option<u16>,
    pub prepare_ok: Option<PrepareOk>,
    /// Result sets seen (a multi-statement or CALL can produce several).
    pub result_sets: u32,
    pub rows: u64,
}

impl ResponseWalker {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::Fetch => State::Rows,
            Expect::FieldList => State::Columns(u64::MAX),
            _ => State::Start,
        };
        Self {
            expect,
            deprecate_eof,
            state,
            continuation: false,
            status: None,
            ok: None,
            error: None,
            prepare_ok: None,
            result_sets: 0,
            rows: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The server asked for a LOAD DATA LOCAL file: the client's file packets
    /// must reach it (then call `file_sent`) before the response goes on.
    pub fn wants_file(&self) -> bool {
        self.state == State::FileRequested
    }

    /// The file (and its empty end packet) went to the server: its OK or ERR
    /// for the statement comes next.
    pub fn file_sent(&mut self) {
        if self.state == State::FileRequested {
            self.state = State::Start;
        }
    }

    /// Is this packet (first byte 0xfe) a terminator rather than a row whose
    /// first length-encoded value starts with 0xfe?
    fn is_terminator(&self, len: usize, payload: &[u8]) -> bool {
        payload.first() == Some(&packets::EOF)
            && if self.deprecate_eof {
                len < MAX_PAYLOAD
            } else {
                len < 9
            }
    }

    fn end_of_result(&mut self, payload: &[u8]) -> Result<Step, WireError> {
        let status = packets::terminator_status(payload, self.deprecate_eof)
            .ok_or(WireError::Malformed("truncated EOF packet"))?;
        self.status = Some(status);
        if self.deprecate_eof {
            self.ok = OkInfo::parse(payload);
        }
        let more = status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0;
        if more && matches!(self.expect, Expect::Results) {
            self.state = State::Start;
            Ok(Step::More)
        } else {
            self.state = State::Done;
            Ok(Step::Done)
        }
    }

    fn finish(&mut self) -> Step {
        self.state = State::Done;
        Step::Done
    }

    /// Whether the next packet is one of a result set's rows (or its
    /// terminator), not the continuation of a longer one.
    pub fn in_rows(&self) -> bool {
        self.state == State::Rows && !self.continuation
    }

    /// Inside a result set's rows: counts the whole packets at the start of
    /// `buf` (headers included) that are plain rows and returns how many
    /// bytes they take, so a large result is walked in one tight pass
    /// instead of one `feed` per row. It stops before anything `feed` must
    /// see: a terminator, an error, an empty or full-size (continued)
    /// packet, or an incomplete one.
    pub fn skip_rows(&mut self, buf: &[u8]) -> usize {
        if self.state != State::Rows || self.continuation {
            return 0;
        }
        let mut at = 0;
        let mut rows = 0;
        while let Some(h) = buf.get(at..at + 5) {
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            let first = h[4];
            let ends =
                first == packets::ERR || (first == packets::EOF && (self.deprecate_eof || len < 9));
            if len == 0 || len >= MAX_PAYLOAD || ends || buf.len() - at - 4 < len {
                break;
            }
            at += 4 + len;
            rows += 1;
        }
        self.rows += rows;
        at
    }

    /// Feeds one physical packet: `len` from its header, `payload` its bytes.
    pub fn feed(&mut self, len: usize, payload: &[u8]) -> Result<Step, WireError> {
        let continued = std::mem::replace(&mut self.continuation, len == MAX_PAYLOAD);
        if continued {
            return Ok(if self.state == State::Done && !self.continuation {
                Step::Done
            } else {
                Step::More
            });
        }
        let first = *payload
            .first()
            .ok_or(WireError::Malformed("empty packet in response"))?;
        if self.expect == Expect::Single {
            match first {
                packets::OK => {
                    self.ok = OkInfo::parse(payload);
                    self.status = self.ok.map(|o| o.status);
                }
                packets::ERR => self.error = Some(err_code(payload)),
                _ => {}
            }
            return Ok(self.finish_unless_continued());
        }
        if first == packets::ERR && len < MAX_PAYLOAD && self.state != State::Done {
            // An ERR ends the response wherever it appears (also mid-result).
            self.error = Some(err_code(payload));
            return Ok(self.finish());
        }
        match self.state {
            State::Start if self.expect == Expect::Prepare => {
                let mut r = Reader::new(payload);
                r.u8();
                let ok = (|| {
                    Some(PrepareOk {
                        statement_id: r.u32()?,
                        columns: r.u16()?,
                        params: r.u16()?,
                    })
                })()
                .ok_or(WireError::Malformed("truncated PREPARE_OK"))?;
                self.prepare_ok = Some(ok);
                let eofs = u32::from(!self.deprecate_eof);
                let group = |n: u16| if n > 0 { u32::from(n) + eofs } else { 0 };
                match group(ok.params) + group(ok.columns) {
                    0 => Ok(self.finish()),
                    n => {
                        self.state = State::PrepareDefs(n);
                        Ok(Step::More)
                    }
                }
            }
            State::Start => match first {
                packets::OK => {
                    let ok = OkInfo::parse(payload).ok_or(WireError::Malformed("truncated OK"))?;
                    self.ok = Some(ok);
                    self.status = Some(ok.status);
                    if ok.status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0 {
                        Ok(Step::More)
                    } else {
                        Ok(self.finish())
                    }
                }
                packets::LOCAL_INFILE => {
                    self.state = State::FileRequested;
                    Ok(Step::More)
                }
                _ => {
                    let n = Reader::new(payload)
                        .lenenc_int()
                        .ok_or(WireError::Malformed("bad column count"))?;
                    self.result_sets += 1;
                    self.state = State::Columns(n);
                    Ok(Step::More)
                }
            },
            State::Columns(n) => {
                if self.expect == Expect::FieldList && self.is_terminator(len, payload) {
                    return self.end_of_result(payload);
                }
                let left = n.saturating_sub(1);
                self.state = match (left, self.deprecate_eof) {
                    (0, true) => State::Rows,
                    (0, false) => State::ColumnsEof,
                    _ => State::Columns(left),
                };
                Ok(Step::More)
            }
            State::ColumnsEof => {
                let status = packets::terminator_status(payload, false).ok_or(
                    WireError::Malformed("expected EOF after column definitions"),
                )?;
                self.status = Some(status);
                // A cursor was opened (COM_STMT_EXECUTE with a cursor type): rows
                // come later through COM_STMT_FETCH.
                if status & StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits() != 0 {
                    return Ok(self.finish());
                }
                self.state = State::Rows;
                Ok(Step::More)
            }
            State::Rows => {
                if self.is_terminator(len, payload) {
                    self.end_of_result(payload)
                } else {
                    self.rows += 1;
                    Ok(Step::More)
                }
            }
            State::PrepareDefs(n) => {
                if n <= 1 {
                    Ok(self.finish())
                } else {
                    self.state = State::PrepareDefs(n - 1);
                    Ok(Step::More)
                }
            }
            State::FileRequested => Err(WireError::Malformed(
                "server answered before the LOAD DATA LOCAL file was sent",
            )),
            State::Done => Err(WireError::Malformed("packet after end of response")),
        }
    }

    fn finish_unless_continued(&mut self) -> Step {
        if self.continuation {
            self.state = State::Done;
            Step::More
        } else {
            self.finish()
        }
    }
}

fn err_code(payload: &[u8]) -> u16 {
    Reader::new(payload.get(1..).unwrap_or(&[]))
        .u16()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packets::{ok_packet, ServerError};

    fn feed_all(w: &mut ResponseWalker, packets: &[Vec<u8>]) -> Vec<Step> {
        packets
            .iter()
            .map(|p| w.feed(p.len(), p).expect("feed"))
            .collect()
    }

    fn eof(status: u16) -> Vec<u8> {
        let mut v = vec![0xfe, 0, 0];
        v.extend_from_slice(&status.to_le_bytes());
        v
    }

    fn ok(status: u16) -> Vec<u8> {
        ok_packet(OkInfo {
            status,
            ..Default::default()
        })
    }

    fn ok_eof(status: u16) -> Vec<u8> {
        let mut v = ok(status);
        v[0] = 0xfe;
        v
    }

    const MORE: u16 = 0x0008;

    #[test]
    fn simple_ok() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        assert_eq!(feed_all(&mut w, &[ok(2)]), vec![Step::Done]);
        assert_eq!(w.status, Some(2));
    }

    #[test]
    fn result_set_classic_eof() {
        let mut w = ResponseWalker::new(Expect::Results, false);
        let steps = feed_all(
            &mut w,
            &[
                vec![2],
                b"coldef1".to_vec(),
                b"coldef2".to_vec(),
                eof(2),
                vec![1, b'a', 0xfb],
                eof(3),
            ],
        );
        assert_eq!(steps.last(), Some(&Step::Done));
        assert!(steps[..5].iter().all(|s| *s == Step::More));
        assert_eq!(w.rows, 1);
        assert_eq!(w.status, Some(3));
    }

    #[test]
    fn two_result_sets_deprecate_eof_then_final_ok() {
        // CALL p(): two result sets, then the procedure's own OK.
        let mut w = ResponseWalker::new(Expect::Results, true);
        let steps = feed_all(
            &mut w,
            &[
                vec![1],
                b"c".to_vec(),
                vec![1, b'x'],
                ok_eof(2 | MORE),
                vec![1],
                b"c".to_vec(),
                vec![1, b'y'],
                ok_eof(2 | MORE),
                ok(2),
            ],
        );
        assert_eq!(steps.iter().filter(|s| **s == Step::Done).count(), 1);
        assert_eq!(steps.last(), Some(&Step::Done));
        assert_eq!(w.result_sets, 2);
    }

    #[test]
    fn row_starting_with_fe_is_not_a_terminator_without_deprecate_eof() {
        let mut w = ResponseWalker::new(Expect::Fetch, false);
        let mut row = vec![0xfe];
        row.extend_from_slice(&[0u8; 8]);
        assert_eq!(w.feed(row.len(), &row).unwrap(), Step::More);
        assert_eq!(w.feed(5, &eof(2)).unwrap(), Step::Done);
    }

    fn framed(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, p) in packets.iter().enumerate() {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
            out.push(seq as u8);
            out.extend_from_slice(p);
        }
        out
    }

    /// Walks `wire` as the relay does, with `chunk` bytes arriving per
    /// read: plain rows skipped in one pass, every other whole packet fed.
    fn walk_in_chunks(w: &mut ResponseWalker, wire: &[u8], chunk: usize) -> Option<Step> {
        let (mut buffered, mut at) = (0, 0);
        while buffered < wire.len() {
            buffered = (buffered + chunk).min(wire.len());
            loop {
                at += w.skip_rows(&wire[at..buffered]);
                let Some(h) = wire
                    .get(at..(at + 4).min(buffered))
                    .filter(|h| h.len() == 4)
                else {
                    break;
                };
                let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                if at + 4 + len > buffered {
                    break;
                }
                let step = w.feed(len, &wire[at + 4..at + 4 + len]).expect("feed");
                at += 4 + len;
                if step == Step::Done {
                    return Some(step);
                }
            }
        }
        None
    }

    #[test]
    fn skipped_rows_end_where_feeding_them_would() {
        for deprecate_eof in [false, true] {
            let end = if deprecate_eof { ok_eof(34) } else { eof(34) };
            // A row starting with 0xfe but 9 bytes or longer is a row
            // without deprecate_eof; with it, any 0xfe packet ends the rows.
            let long_fe = [vec![0xfe], vec![b'r'; 8]].concat();
            let mut packets = vec![vec![1], b"coldef".to_vec()];
            if !deprecate_eof {
                packets.push(eof(2));
            }
            for i in 0..50u8 {
                packets.push(vec![2, b'a', i]);
                if i % 7 == 0 && !deprecate_eof {
                    packets.push(long_fe.clone());
                }
            }
            packets.push(end);
            let wire = framed(&packets);
            let mut whole = ResponseWalker::new(Expect::Results, deprecate_eof);
            assert_eq!(feed_all(&mut whole, &packets).last(), Some(&Step::Done));
            for chunk in [1, 3, 4, 5, 7, 16, 100, wire.len()] {
                let mut w = ResponseWalker::new(Expect::Results, deprecate_eof);
                assert_eq!(
                    walk_in_chunks(&mut w, &wire, chunk),
                    Some(Step::Done),
                    "chunk {chunk}"
                );
                assert_eq!(
                    (w.rows, w.status),
                    (whole.rows, whole.status),
                    "chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn skipping_stops_at_errors_full_size_packets_and_outside_rows() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        let row = framed(&[vec![1, b'x']]);
        assert_eq!(
            w.skip_rows(&row),
            0,
            "no rows before the column definitions"
        );
        feed_all(&mut w, &[vec![1], b"c".to_vec()]);
        let err = ServerError::new(1317, b"70100", "interrupted").encode();
        let wire = framed(&[vec![1, b'x'], vec![1, b'y'], err]);
        assert_eq!(w.skip_rows(&wire), 12, "two rows, then the error for feed");
        assert_eq!(w.rows, 2);
        let mut full = vec![0xff, 0xff, 0xff, 3];
        full.extend_from_slice(&[1; 16]);
        assert_eq!(
            w.skip_rows(&full),
            0,
            "a full-size packet is fed (it continues)"
        );
    }

    #[test]
    fn error_mid_result_ends_response() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        let err = ServerError::new(1317, b"70100", "Query execution was interrupted").encode();
        let steps = feed_all(&mut w, &[vec![1], b"c".to_vec(), vec![1, b'x'], err]);
        assert_eq!(steps.last(), Some(&Step::Done));
        assert_eq!(w.error, Some(1317));
    }

    #[test]
    fn prepare_with_params_and_columns() {
        for deprecate in [false, true] {
            let mut w = ResponseWalker::new(Expect::Prepare, deprecate);
            let mut pok = vec![0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
            let mut packets = vec![pok.clone(), b"p1".to_vec(), b"p2".to_vec()];
            if !deprecate {
                packets.push(eof(2));
            }
            packets.push(b"c1".to_vec());
            if !deprecate {
                packets.push(eof(2));
            }
            let steps = feed_all(&mut w, &packets);
            assert_eq!(steps.last(), Some(&Step::Done), "deprecate={deprecate}");
            assert_eq!(steps.iter().filter(|s| **s == Step::Done).count(), 1);
            assert_eq!(
                w.prepare_ok,
                Some(PrepareOk {
                    statement_id: 7,
                    columns: 1,
                    params: 2
                })
            );
            pok.clear();
        }
    }

    #[test]
    fn prepare_without_defs_is_one_packet() {
        let mut w = ResponseWalker::new(Expect::Prepare, false);
        let pok = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(w.feed(pok.len(), &pok).unwrap(), Step::Done);
    }

    #[test]
    fn cursor_ends_after_column_eof() {
        let mut w = ResponseWalker::new(Expect::Results, false);
        let steps = feed_all(&mut w, &[vec![1], b"c".to_vec(), eof(0x0042)]);
        assert_eq!(steps.last(), Some(&Step::Done));
    }

    #[test]
    fn continuation_packets_are_not_classified() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        feed_all(&mut w, &[vec![1], b"c".to_vec()]);
        // A 16 MiB row whose continuation begins with 0xfe must not end the result.
        let big = vec![0xfe; 16];
        assert_eq!(w.feed(MAX_PAYLOAD, &big).unwrap(), Step::More);
        assert_eq!(w.feed(3, &[0xfe, 0, 0]).unwrap(), Step::More);
        assert_eq!(w.feed(7, &ok_eof(2)).unwrap(), Step::Done);
        assert_eq!(w.rows, 1);
    }

    #[test]
    fn local_infile_request_waits_for_the_file_then_takes_the_ok() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        let request = b"\xfb/tmp/data.csv".to_vec();
        assert_eq!(w.feed(request.len(), &request).unwrap(), Step::More);
        assert!(w.wants_file());
        // Nothing may come from the server before the file was sent.
        assert!(w.feed(7, &ok(2)).is_err());
        let mut w = ResponseWalker::new(Expect::Results, true);
        w.feed(request.len(), &request).unwrap();
        w.file_sent();
        assert!(!w.wants_file());
        let done = ok_packet(OkInfo {
            affected_rows: 3,
            status: 2,
            ..Default::default()
        });
        assert_eq!(w.feed(done.len(), &done).unwrap(), Step::Done);
        assert_eq!(w.ok.map(|o| o.affected_rows), Some(3));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut w = ResponseWalker::new(Expect::Results, true);
        assert!(w.feed(0, &[]).is_err());
        let mut w = ResponseWalker::new(Expect::Prepare, true);
        assert!(w.feed(2, &[0, 1]).is_err());
        let mut w = ResponseWalker::new(Expect::Results, false);
        w.feed(1, &[1]).unwrap();
        w.feed(1, b"c").unwrap();
        assert!(w.feed(2, &[0xfe, 0]).is_err());
    }
}
