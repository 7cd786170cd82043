//! Statement classification (read / write / DDL / …) with a fingerprint cache.
//!
//! The proxy must decide per statement where it may be routed and whether it
//! changes data; parsing costs tens of microseconds, so results are cached
//! under the statement's fingerprint (see [`super::fingerprint`]).
//!
//! **Cache invariant:** a [`Classified`] depends only on the statement's
//! structure (kind, table names, functions used, clauses present), never on
//! literal values, comments, whitespace or list lengths, which is exactly
//! what the fingerprint erases. Keep it that way: adding a field derived from
//! a literal would make cache hits return another statement's answer. The
//! fingerprint deliberately keeps anything sqlparser could choke on
//! (unterminated literals/comments, malformed lists, `--` without a space),
//! so parse success is also a function of the key in practice; in the
//! pathological leftover cases a failure classifies as `Write`, the safe side.

mod analyze;
pub mod fallback;

use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use self::analyze::classify_statements;
use super::fingerprint::{
    fingerprint, fingerprint_into, hash_fingerprint, unwrap_executable_comments,
};
use super::parse::Parsed;

thread_local! {
    /// Reused fingerprint buffer of this thread (see `Classifier::classify`).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// Largest scratch buffer kept between statements.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Number of cache shards (fewer when the capacity is smaller).
const SHARDS: usize = 16;
/// Slots of each thread's front cache (direct-mapped by hash).
const FRONT_SLOTS: usize = 256;
/// How many distinct unparsable fingerprints are remembered as already logged.
const LOGGED_CAPACITY: usize = 4096;
/// Fingerprints up to this length are parsed on the caller's stack (and
/// cached); longer ones go to a helper thread and are not cached, to keep
/// both stack use and cache memory bounded (`sql::parse`).
const INLINE_PARSE_MAX: usize = super::parse::INLINE_WEIGHT_MAX;
/// Longer fingerprints are not parsed at all (→ `Write`, the safe side).
#[cfg(test)]
const MAX_PARSE_LEN: usize = super::parse::MAX_WEIGHT;
/// Longest fingerprint quoted in a log line.
const LOG_FINGERPRINT_MAX: usize = 1024;

/// What a statement does, from the routing point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementClass {
    /// Reads data only: SELECT, SHOW, EXPLAIN, DESCRIBE, VALUES.
    Read,
    /// Changes rows (or may: CALL, unparsable text).
    Write,
    /// Changes schema objects.
    Ddl,
    /// Transaction control.
    Transaction,
    /// Changes session state: SET, USE, `SELECT … INTO @v`, `@v := …`.
    Session,
    /// Everything else: GRANT, FLUSH, KILL, LOCK TABLES, ANALYZE, …
    Other,
}

impl StatementClass {
    /// Rank used to pick the overall class of a multi-statement text:
    /// Ddl > Write > Transaction > Session > Other > Read.
    fn severity(self) -> u8 {
        match self {
            StatementClass::Read => 0,
            StatementClass::Other => 1,
            StatementClass::Session => 2,
            StatementClass::Transaction => 3,
            StatementClass::Write => 4,
            StatementClass::Ddl => 5,
        }
    }
}

/// The transaction-control operation of a [`StatementClass::Transaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnOp {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    ReleaseSavepoint,
    RollbackToSavepoint,
}

/// Classification of one SQL text (possibly several `;`-separated statements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Most severe class among the statements (see [`StatementClass`]);
    /// `Write` when the text could not be parsed nor recognised by
    /// [`fallback`], `Other` when it is empty.
    pub class: StatementClass,
    /// One entry per statement, in text order; empty when `parsed` is false
    /// and [`fallback`] did not recognise the statement.
    pub statements: Vec<StatementInfo>,
    /// False when sqlparser rejected the text (even if [`fallback`] then
    /// recognised it: the text itself cannot be translated or pinned).
    pub parsed: bool,
    /// The cache key; see [`fingerprint`].
    pub fingerprint: String,
}

/// Facts about a single statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementInfo {
    pub class: StatementClass,
    /// Tables touched, as written but without quotes (`db.t` when qualified),
    /// deduplicated, in first-seen order; includes subqueries, joins, CTE
    /// bodies and `INSERT … SELECT` sources, excludes CTE names.
    pub tables: Vec<String>,
    /// Set for `Transaction` statements.
    pub txn: Option<TxnOp>,
    /// `SELECT … FOR UPDATE` / `FOR SHARE`.
    pub locking_read: bool,
    /// Result depends on more than the data: time/random/session functions,
    /// or `LIMIT` without `ORDER BY` (in any query block, UPDATE or DELETE).
    pub nondeterministic: bool,
    /// A plain query (`SELECT`/`WITH`/`VALUES`/`TABLE`), as opposed to SHOW,
    /// EXPLAIN and the like, whose output is engine-specific.
    pub query: bool,
    /// The outermost query block has ORDER BY: its row order is meaningful.
    pub ordered: bool,
}

type Shard = Mutex<LruCache<u64, Arc<Classified>>>;

/// A thread's own copies of the classifications it used last, in front of
/// the shared shards. Every session of a hot statement hits the same shard:
/// without this, each hit takes that shard's lock, reorders its LRU list and
/// counts a reference on the shared `Arc`, all cache lines written from
/// every core per statement (`benches/classify.rs`: 400–680 ns per hit with
/// a second thread at work, 145–240 ns with this). A front hit writes only
/// this thread's memory. The copy is deep (its own `Arc`), made when an
/// entry comes in from the shards; a workload with more hot fingerprints
/// than slots pays one copy per front miss, about what the shard lookup
/// costs.
struct Front {
    slots: Vec<Option<(u64, Arc<Classified>)>>,
}

impl Front {
    fn new() -> Self {
        Front {
            slots: vec![None; FRONT_SLOTS],
        }
    }

    fn slot(hash: u64) -> usize {
        hash as usize % FRONT_SLOTS
    }

    fn get(&self, hash: u64, fp: &str) -> Option<Arc<Classified>> {
        match self.slots.get(Self::slot(hash)) {
            Some(Some((h, c))) if *h == hash && c.fingerprint == fp => Some(Arc::clone(c)),
            _ => None,
        }
    }

    fn put(&mut self, hash: u64, c: Arc<Classified>) {
        if let Some(slot) = self.slots.get_mut(Self::slot(hash)) {
            *slot = Some((hash, c));
        }
    }
}

/// Thread-safe classifier with a bounded, sharded LRU cache keyed by
/// fingerprint hash (the full fingerprint is compared on hit), and a small
/// per-thread front cache over it ([`Front`]).
pub struct Classifier {
    shards: Vec<Shard>,
    front: thread_local::ThreadLocal<std::cell::RefCell<Front>>,
    parse_failures: AtomicU64,
    /// Hashes of unparsable fingerprints already logged (bounded).
    logged: Mutex<LruCache<u64, ()>>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("shards", &self.shards.len())
            .field("cache_len", &self.cache_len())
            .field("parse_failures", &self.parse_failures())
            .finish()
    }
}

/// Locks a mutex, recovering from poisoning: the guarded data (a cache) is
/// valid after any panic, and the proxy must not cascade a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Classifier {
    /// Creates a classifier caching at most `capacity` results in total
    /// (`0` disables caching: every call parses).
    pub fn new(capacity: usize) -> Self {
        let count = capacity.min(SHARDS);
        let shards = (0..count)
            .map(|i| {
                let cap = capacity / count + usize::from(i < capacity % count);
                Mutex::new(LruCache::new(
                    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN),
                ))
            })
            .collect();
        let logged = NonZeroUsize::new(LOGGED_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Classifier {
            shards,
            front: thread_local::ThreadLocal::new(),
            parse_failures: AtomicU64::new(0),
            logged: Mutex::new(LruCache::new(logged)),
        }
    }

    /// Classifies `sql`, from the cache when a statement with the same
    /// fingerprint was seen before. Never panics.
    pub fn classify(&self, sql: &str) -> Arc<Classified> {
        self.classify_parsed(&mut Parsed::new(sql))
    }

    /// [`Classifier::classify`] of a statement that is carried on to pinning
    /// and translation: a cache miss parses it into `parsed`, where those
    /// steps find the AST (`sql::parse`); a hit parses nothing.
    pub fn classify_parsed(&self, parsed: &mut Parsed<'_>) -> Arc<Classified> {
        let sql = parsed.text();
        // A cache hit allocates nothing: the fingerprint is built in a
        // per-thread buffer and copied out only on a miss.
        let (hash, hit) = SCRATCH.with_borrow_mut(|buf| {
            fingerprint_into(sql, buf);
            let fp = std::str::from_utf8(buf).unwrap_or("");
            let hash = hash_fingerprint(fp);
            let front = self.front();
            let hit = match front.and_then(|f| f.borrow().get(hash, fp)) {
                Some(hit) => Some(hit),
                None => self
                    .shard(hash)
                    .and_then(|shard| {
                        lock(shard)
                            .get(&hash)
                            .filter(|c| !fp.is_empty() && c.fingerprint == fp)
                            .cloned()
                    })
                    .map(|shared| {
                        let own = Arc::new(Classified::clone(&shared));
                        if let Some(f) = front {
                            f.borrow_mut().put(hash, Arc::clone(&own));
                        }
                        own
                    }),
            };
            // Don't keep a huge buffer alive after one huge statement.
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            (hash, hit)
        });
        if let Some(hit) = hit {
            if !hit.parsed {
                self.parse_failures.fetch_add(1, Ordering::Relaxed);
            }
            return hit;
        }
        let fp = fingerprint(sql);
        if fp.is_empty() {
            return Arc::new(Classified {
                class: StatementClass::Other,
                statements: Vec::new(),
                parsed: true,
                fingerprint: fp,
            });
        }
        let shard = self.shard(hash);

        // Parse without holding any lock.
        let cacheable = fp.len() <= INLINE_PARSE_MAX;
        let result = match analyze_parsed(parsed, &fp) {
            Ok((class, statements)) => Arc::new(Classified {
                class,
                statements,
                parsed: true,
                fingerprint: fp,
            }),
            Err(error) => match recognized(sql) {
                Some((class, statements)) => Arc::new(Classified {
                    class,
                    statements,
                    parsed: false,
                    fingerprint: fp,
                }),
                None => {
                    self.parse_failures.fetch_add(1, Ordering::Relaxed);
                    self.warn_once(hash, &fp, &error);
                    Arc::new(Classified {
                        class: StatementClass::Write,
                        statements: Vec::new(),
                        parsed: false,
                        fingerprint: fp,
                    })
                }
            },
        };
        if let Some(shard) = shard.filter(|_| cacheable) {
            // The shards get a copy; the one returned stays this thread's.
            lock(shard).put(hash, Arc::new(Classified::clone(&result)));
            if let Some(f) = self.front() {
                f.borrow_mut().put(hash, Arc::clone(&result));
            }
        }
        result
    }

    /// This thread's front cache (none when caching is off).
    fn front(&self) -> Option<&std::cell::RefCell<Front>> {
        match self.shards.is_empty() {
            true => None,
            false => Some(self.front.get_or(|| std::cell::RefCell::new(Front::new()))),
        }
    }

    /// Number of classified texts sqlparser could not parse, counting every
    /// occurrence (cache hits included).
    pub fn parse_failures(&self) -> u64 {
        self.parse_failures.load(Ordering::Relaxed)
    }

    /// Number of cached classifications.
    pub fn cache_len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    fn shard(&self, hash: u64) -> Option<&Shard> {
        if self.shards.is_empty() {
            return None;
        }
        // High bits: the LRU's own map hashes the key again anyway.
        self.shards.get((hash >> 40) as usize % self.shards.len())
    }

    /// Logs a parse failure once per fingerprint (as long as it stays among
    /// the last `LOGGED_CAPACITY` distinct failures), so a hot unparsable
    /// statement cannot flood the log.
    fn warn_once(&self, hash: u64, fp: &str, error: &str) {
        let first = lock(&self.logged).put(hash, ()).is_none();
        if first {
            tracing::warn!(
                fingerprint = %truncate(fp, LOG_FINGERPRINT_MAX),
                error = %error,
                "sqlparser could not parse statement; classifying it as a write"
            );
        }
    }
}

/// The class of a statement sqlparser rejected but [`fallback`] knows.
fn recognized(sql: &str) -> Option<(StatementClass, Vec<StatementInfo>)> {
    if sql.len() > INLINE_PARSE_MAX {
        return None;
    }
    match fallback::recognize(sql)? {
        fallback::Recognized::Rewrite { text, .. } => parse_inline(&text, &text).ok(),
        fallback::Recognized::Kind { info, .. } => Some((info.class, vec![info])),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Analyses the AST `parsed` holds (parsing it there if needed). Texts with
/// executable comments are classified on their unwrapped body, which no
/// other step parses, and heavy ones are parsed on a helper thread: both
/// parse on their own, as before.
fn analyze_parsed(
    parsed: &mut Parsed<'_>,
    fp: &str,
) -> Result<(StatementClass, Vec<StatementInfo>), String> {
    if fp.len() <= INLINE_PARSE_MAX && !fp.contains("/*!") {
        match parsed.statements() {
            Some(Ok(statements)) => {
                return catch_unwind(AssertUnwindSafe(|| classify_statements(statements)))
                    .map_err(|_| "sqlparser panicked".to_owned());
            }
            Some(Err(e)) => return Err(e.clone()),
            None => {}
        }
    }
    parse_and_analyze(parsed.text(), fp)
}

/// Parses and analyses `sql`. Long statements run on a helper thread whose
/// stack grows with the fingerprint: sqlparser builds operator chains
/// (`a OR b OR …`) iteratively, but the AST is then walked and dropped
/// recursively, and a chain of tens of thousands of terms would overflow a
/// 2 MiB worker stack, which aborts the whole process.
fn parse_and_analyze(sql: &str, fp: &str) -> Result<(StatementClass, Vec<StatementInfo>), String> {
    super::parse::guarded(fp.len(), || parse_inline(sql, fp)).unwrap_or_else(|e| Err(e.to_string()))
}

/// Parses with the MySQL dialect. Executable comments (`/*!…*/`) are unwrapped
/// first because MySQL runs their body while sqlparser would skip it. A panic
/// inside sqlparser (a third-party bug) is turned into a parse failure.
fn parse_inline(sql: &str, fp: &str) -> Result<(StatementClass, Vec<StatementInfo>), String> {
    let unwrapped = if fp.contains("/*!") {
        unwrap_executable_comments(sql)
    } else {
        None
    };
    let text = unwrapped.as_deref().unwrap_or(sql);
    let result = catch_unwind(AssertUnwindSafe(|| {
        super::parse::statements(text).map(|statements| classify_statements(&statements))
    }));
    match result {
        Ok(Ok(classified)) => Ok(classified),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("sqlparser panicked".to_owned()),
    }
}

#[cfg(test)]
mod tests;
