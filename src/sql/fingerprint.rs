//! Literal-free statement fingerprints.
//!
//! The fingerprint is the cache key of the classifier and the grouping key of
//! per-statement metrics, so it runs on every statement that crosses the proxy.
//! It is therefore a hand-written single pass over the bytes (no parser, no
//! regex, at most one output allocation: none when the caller reuses a buffer).
//!
//! Normalisation scheme:
//! * string literals (`'…'`, `"…"`, with backslash escapes and doubled quotes),
//!   hex/bit literals (`0x1F`, `X'1F'`, `b'01'`, `0b01`), national strings
//!   (`N'…'`), integers, decimals and exponents become `?`. A sign stays as
//!   written (`-5` → `-?`); a charset introducer stays (`_utf8mb4'a'` → `_utf8mb4?`).
//! * digits that belong to an identifier (`t1`, `col_2`, `1abc`, `t.1x`) and
//!   backtick-quoted identifiers are copied verbatim.
//! * `-- `, `#` and `/* */` comments are dropped; executable comments `/*! */`
//!   and optimizer hints `/*+ */` are kept verbatim because they change meaning.
//! * whitespace runs become one space; leading/trailing whitespace and trailing
//!   `;` are removed; letter case is preserved.
//! * a parenthesised group made only of placeholders (`?`, `,`, `-`, spaces)
//!   becomes `(?+)`, and a comma-separated run of such groups collapses into a
//!   single `(?+)`. So `IN (1)`, `IN (1, 2, 3)`, `VALUES (1, 'a')` and
//!   `VALUES (1, 'a'), (2, 'b')` all end in `(?+)`: statements that differ
//!   only in list length or row count share one fingerprint. Groups holding
//!   anything else (e.g. `VALUES (1, NOW())`) are not collapsed.
//! * existing `?` placeholders (prepared statements) stay `?`.

/// Returns `sql` with literals replaced by `?`, comments dropped, whitespace
/// collapsed and placeholder lists folded (see the module docs for the scheme).
pub fn fingerprint(sql: &str) -> String {
    let mut out = Vec::with_capacity(sql.len());
    fingerprint_into(sql, &mut out);
    // Only ever split at ASCII bytes, so this is valid UTF-8; the lossy
    // fallback exists purely so that no input can cause a panic.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes the fingerprint of `sql` into `out` (cleared first), so a caller
/// with a reusable buffer fingerprints without allocating. The bytes are
/// valid UTF-8 whenever `sql` is (splits happen at ASCII bytes only).
pub fn fingerprint_into(sql: &str, out: &mut Vec<u8>) {
    out.clear();
    let b = sql.as_bytes();
    let n = b.len();
    let mut pending_space = false;
    let mut group = Group {
        start: None,
        slot: Slot::Dirty,
    };
    // The previous token was a `.` glued to an identifier: the next word is an
    // identifier even when it starts with a digit (`t.1col`).
    let mut after_qualifier_dot = false;
    let mut i = 0;

    while i < n {
        let c = b[i];
        // Whitespace and comments only set `pending_space`.
        if c.is_ascii_whitespace() {
            pending_space = true;
            i += 1;
            continue;
        }
        if c == b'#' || (c == b'-' && is_dash_comment(b, i)) {
            i = skip_line(b, i);
            pending_space = true;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match skip_block_comment(b, i) {
                Some(end) if !matches!(b.get(i + 2), Some(b'!' | b'+')) => {
                    pending_space = true;
                    i = end;
                    continue;
                }
                // Executable comment, hint, or unterminated comment (which
                // the parser rejects): keep verbatim.
                end => {
                    let end = end.unwrap_or(n);
                    emit_space(out, &mut pending_space);
                    out.extend_from_slice(&b[i..end]);
                    group.other();
                    after_qualifier_dot = false;
                    i = end;
                    continue;
                }
            }
        }

        emit_space(out, &mut pending_space);
        let qualifier = after_qualifier_dot;
        after_qualifier_dot = false;

        match c {
            b'\'' | b'"' => match skip_quoted(b, i + 1, c) {
                Some(end) => {
                    i = end;
                    out.push(b'?');
                    group.placeholder();
                }
                None => {
                    // Unterminated: the parser fails on it, so keep it distinct.
                    out.extend_from_slice(&b[i..]);
                    group.other();
                    i = n;
                }
            },
            b'?' => {
                i += 1;
                out.push(b'?');
                group.placeholder();
            }
            b'`' => {
                let end = skip_backtick(b, i + 1);
                out.extend_from_slice(&b[i..end]);
                group.other();
                i = end;
                after_qualifier_dot = b.get(i) == Some(&b'.');
            }
            b'(' => {
                group.start = Some(out.len());
                group.slot = Slot::Item;
                out.push(c);
                i += 1;
            }
            b')' => {
                i += 1;
                match group.close() {
                    Some(start) => {
                        out.truncate(start);
                        fold_group(out);
                    }
                    None => out.push(c),
                }
            }
            b',' => {
                out.push(c);
                group.comma();
                i += 1;
            }
            b'-' => {
                out.push(c);
                group.sign();
                i += 1;
            }
            b'.' if !qualifier && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                // `.5`, `.5e3`: a number starting with the decimal point.
                i = scan_number(b, i);
                out.push(b'?');
                group.placeholder();
            }
            _ if is_word_byte(c) => {
                let (end, literal) = scan_word(b, i, qualifier);
                match literal {
                    Some(true) => {
                        out.push(b'?');
                        group.placeholder();
                    }
                    Some(false) => {
                        out.extend_from_slice(&b[i..end]);
                        group.other();
                        after_qualifier_dot = b.get(end) == Some(&b'.');
                    }
                    None => {
                        out.extend_from_slice(&b[i..]);
                        group.other();
                    }
                }
                i = end;
            }
            _ => {
                out.push(c);
                group.other();
                // `t.` then `.`: keep the qualifier state for the next word.
                after_qualifier_dot = qualifier && c == b'.';
                i += 1;
            }
        }
    }

    while matches!(out.last(), Some(b' ' | b';')) {
        out.pop();
    }
}

/// Where a placeholder group stands: `(` opens it expecting an item, and it
/// folds on `)` only if its content was exactly `? (, ?)*` (signs allowed).
/// `(1,)` or `(1 2)` do not fold, since the parser may treat them differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Item,
    Comma,
    Dirty,
}

struct Group {
    /// Output index of the innermost unclosed `(`, if it can still fold.
    start: Option<usize>,
    slot: Slot,
}

impl Group {
    #[inline]
    fn placeholder(&mut self) {
        self.slot = if self.slot == Slot::Item {
            Slot::Comma
        } else {
            Slot::Dirty
        };
    }
    #[inline]
    fn comma(&mut self) {
        self.slot = if self.slot == Slot::Comma {
            Slot::Item
        } else {
            Slot::Dirty
        };
    }
    #[inline]
    fn sign(&mut self) {
        if self.slot != Slot::Item {
            self.slot = Slot::Dirty;
        }
    }
    #[inline]
    fn other(&mut self) {
        self.slot = Slot::Dirty;
    }
    /// Closes the group; returns its start when it folds to `(?+)`.
    #[inline]
    fn close(&mut self) -> Option<usize> {
        let start = self.start.take()?;
        let folds = self.slot == Slot::Comma;
        self.slot = Slot::Dirty;
        folds.then_some(start)
    }
}

/// Stable 64-bit hash of the fingerprint of `sql`.
pub fn fingerprint_hash(sql: &str) -> u64 {
    hash_fingerprint(&fingerprint(sql))
}

/// FNV-1a (64-bit) of an already computed fingerprint. Stable across runs and
/// builds (unlike `std`'s randomly seeded hasher), so it can be logged or
/// exported as a metric label.
pub fn hash_fingerprint(fp: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    fp.as_bytes()
        .iter()
        .fold(OFFSET, |h, &x| (h ^ u64::from(x)).wrapping_mul(PRIME))
}

/// Rewrites MySQL executable comments `/*!NNNNN body */` to ` body ` so a
/// parser that treats them as plain comments sees what MySQL executes.
/// Returns `None` when the text contains no executable comment.
pub fn unwrap_executable_comments(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let n = b.len();
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // b[..copied] is already in `out`
    let mut i = 0;
    while i < n {
        let c = b[i];
        i = match c {
            b'\'' | b'"' => skip_quoted(b, i + 1, c).unwrap_or(n),
            b'`' => skip_backtick(b, i + 1),
            b'#' => skip_line(b, i),
            b'-' if is_dash_comment(b, i) => skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') && b.get(i + 2) == Some(&b'!') => {
                let end = skip_block_comment(b, i).unwrap_or(n);
                let mut body = i + 3;
                while body < end && b[body].is_ascii_digit() {
                    body += 1;
                }
                let body_end = if end >= body + 2 && b[end - 2] == b'*' && b[end - 1] == b'/' {
                    end - 2
                } else {
                    end
                };
                let o = out.get_or_insert_with(|| Vec::with_capacity(n));
                o.extend_from_slice(&b[copied..i]);
                o.push(b' ');
                o.extend_from_slice(&b[body..body_end.max(body)]);
                o.push(b' ');
                copied = end;
                end
            }
            b'/' if b.get(i + 1) == Some(&b'*') => skip_block_comment(b, i).unwrap_or(n),
            _ => i + 1,
        };
    }
    let mut o = out?;
    o.extend_from_slice(&b[copied.min(n)..]);
    Some(
        String::from_utf8(o).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

#[inline]
fn emit_space(out: &mut Vec<u8>, pending: &mut bool) {
    if *pending && !out.is_empty() {
        out.push(b' ');
    }
    *pending = false;
}

/// Appends `(?+)` unless the output already ends with `(?+),` (optionally with
/// spaces), in which case the new group merges into the previous one.
fn fold_group(out: &mut Vec<u8>) {
    let mut end = out.len();
    while end > 0 && out[end - 1] == b' ' {
        end -= 1;
    }
    if end > 0 && out[end - 1] == b',' {
        let mut e = end - 1;
        while e > 0 && out[e - 1] == b' ' {
            e -= 1;
        }
        if out[..e].ends_with(b"(?+)") {
            out.truncate(e);
            return;
        }
    }
    out.extend_from_slice(b"(?+)");
}

/// Identifier bytes in MySQL: ASCII alphanumerics, `_`, `$` and any non-ASCII
/// byte (UTF-8 identifiers).
#[inline]
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// MySQL only starts a `--` comment when whitespace follows (`1--1` is
/// `1 - -1`). Like sqlparser, a `--` at the very end is not a comment: the
/// fingerprint must never drop what the parser sees (see `classify`).
#[inline]
fn is_dash_comment(b: &[u8], i: usize) -> bool {
    b.get(i + 1) == Some(&b'-')
        && matches!(
            b.get(i + 2),
            Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
        )
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&x| x == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

/// `i` points at `/*`; returns the index after the closing `*/`, or `None`
/// when the comment is unterminated.
fn skip_block_comment(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 2;
    while j + 1 < b.len() {
        if b[j] == b'*' && b[j + 1] == b'/' {
            return Some(j + 2);
        }
        j += 1;
    }
    None
}

/// `i` is just after the opening quote; returns the index after the closing
/// one, or `None` when the literal is unterminated.
fn skip_quoted(b: &[u8], mut i: usize, q: u8) -> Option<usize> {
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            i += 2;
        } else if c == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// `i` is just after the opening backtick; doubled backticks stay inside.
fn skip_backtick(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if b[i] == b'`' {
            if b.get(i + 1) == Some(&b'`') {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Scans digits, an optional fraction and an optional exponent from `i`.
fn scan_number(b: &[u8], mut i: usize) -> usize {
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(b, i);
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+') | Some(b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(b, j);
        }
    }
    i
}

/// Scans a word starting at `i` (an identifier, keyword or number). Returns
/// the end index and `Some(true)` for a literal to be replaced by `?`,
/// `Some(false)` for an identifier/keyword, `None` for an unterminated
/// `X'…` literal (end is then the end of input).
fn scan_word(b: &[u8], i: usize, qualifier: bool) -> (usize, Option<bool>) {
    let word_end = |mut j: usize| {
        while j < b.len() && is_word_byte(b[j]) {
            j += 1;
        }
        j
    };
    let c = b[i];
    let next = b.get(i + 1).copied();
    if !qualifier {
        // X'..', B'..', N'..': hex, bit and national string literals.
        if matches!(c, b'x' | b'X' | b'b' | b'B' | b'n' | b'N') && next == Some(b'\'') {
            return match skip_quoted(b, i + 2, b'\'') {
                Some(end) => (end, Some(true)),
                None => (b.len(), None),
            };
        }
        if c.is_ascii_digit() {
            // 0x1F / 0b101, unless more identifier bytes follow (`0xZZ`).
            if c == b'0' && matches!(next, Some(b'x') | Some(b'X') | Some(b'b') | Some(b'B')) {
                let hex = matches!(next, Some(b'x') | Some(b'X'));
                let mut j = i + 2;
                while j < b.len()
                    && (if hex {
                        b[j].is_ascii_hexdigit()
                    } else {
                        matches!(b[j], b'0' | b'1')
                    })
                {
                    j += 1;
                }
                if j > i + 2 && !b.get(j).copied().is_some_and(is_word_byte) {
                    return (j, Some(true));
                }
            }
            let end = scan_number(b, i);
            if !b.get(end).copied().is_some_and(is_word_byte) {
                return (end, Some(true));
            }
            // `1abc`: MySQL identifiers may start with digits.
        }
    }
    (word_end(i), Some(false))
}

#[cfg(test)]
#[path = "fingerprint_tests.rs"]
mod tests;
