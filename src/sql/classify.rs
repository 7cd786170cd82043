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

thread_local! {
    /// Reused fingerprint buffer of this thread (see `Classifier::classify`).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// Largest scratch buffer kept between statements.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Number of cache shards (fewer when the capacity is smaller).
const SHARDS: usize = 16;
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

/// Thread-safe classifier with a bounded, sharded LRU cache keyed by
/// fingerprint hash (the full fingerprint is compared on hit).
pub struct Classifier {
    shards: Vec<Shard>,
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
            parse_failures: AtomicU64::new(0),
            logged: Mutex::new(LruCache::new(logged)),
        }
    }

    /// Classifies `sql`, from the cache when a statement with the same
    /// fingerprint was seen before. Never panics.
    pub fn classify(&self, sql: &str) -> Arc<Classified> {
        // A cache hit allocates nothing: the fingerprint is built in a
        // per-thread buffer and copied out only on a miss.
        let (hash, hit) = SCRATCH.with_borrow_mut(|buf| {
            fingerprint_into(sql, buf);
            let fp = std::str::from_utf8(buf).unwrap_or("");
            let hash = hash_fingerprint(fp);
            let hit = self.shard(hash).and_then(|shard| {
                lock(shard)
                    .get(&hash)
                    .filter(|c| !fp.is_empty() && c.fingerprint == fp)
                    .cloned()
            });
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
        let result = match parse_and_analyze(sql, &fp) {
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
            lock(shard).put(hash, Arc::clone(&result));
        }
        result
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
mod tests {
    use super::StatementClass::*;
    use super::*;

    fn parsed(sql: &str) -> Arc<Classified> {
        let c = Classifier::new(0).classify(sql);
        assert!(c.parsed, "failed to parse: {sql}");
        c
    }

    fn one(sql: &str) -> StatementInfo {
        let c = parsed(sql);
        assert_eq!(c.statements.len(), 1, "{sql}");
        c.statements[0].clone()
    }

    /// Checks (sql, class, tables) rows and reports every mismatch at once.
    fn check(corpus: &[(&str, StatementClass, &[&str])]) {
        let mut bad = Vec::new();
        for &(sql, class, tables) in corpus {
            let c = Classifier::new(0).classify(sql);
            let got: Vec<&str> = c
                .statements
                .iter()
                .flat_map(|s| s.tables.iter().map(String::as_str))
                .collect();
            if !c.parsed || c.class != class || got != tables {
                bad.push(format!(
                    "{sql}\n    got {:?} parsed={} {got:?}",
                    c.class, c.parsed
                ));
            }
        }
        assert!(bad.is_empty(), "misclassified:\n{}", bad.join("\n"));
    }

    #[rustfmt::skip]
    #[test]
    fn sysbench_oltp() {
        check(&[
            ("SELECT c FROM sbtest1 WHERE id=?", Read, &["sbtest1"]),
            ("SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?", Read, &["sbtest1"]),
            ("SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?", Read, &["sbtest1"]),
            ("SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c", Read, &["sbtest1"]),
            ("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c", Read, &["sbtest1"]),
            ("UPDATE sbtest1 SET k=k+1 WHERE id=?", Write, &["sbtest1"]),
            ("UPDATE sbtest1 SET c=? WHERE id=?", Write, &["sbtest1"]),
            ("DELETE FROM sbtest1 WHERE id=?", Write, &["sbtest1"]),
            ("INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)", Write, &["sbtest1"]),
            ("BEGIN", Transaction, &[]),
            ("COMMIT", Transaction, &[]),
            ("SELECT c FROM sbtest1 WHERE id=5023", Read, &["sbtest1"]),
            ("SELECT c FROM sbtest1 WHERE id BETWEEN 4977 AND 5076", Read, &["sbtest1"]),
            ("SELECT SUM(k) FROM sbtest7 WHERE id BETWEEN 1 AND 100", Read, &["sbtest7"]),
            ("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 50 AND 149 ORDER BY c", Read, &["sbtest1"]),
            ("UPDATE sbtest1 SET k=k+1 WHERE id=5010", Write, &["sbtest1"]),
            ("UPDATE sbtest1 SET c='83868641912-28773972837-60736120486' WHERE id=4998", Write, &["sbtest1"]),
            ("DELETE FROM sbtest1 WHERE id=5025", Write, &["sbtest1"]),
            ("INSERT INTO sbtest1 (id, k, c, pad) VALUES (5025, 4996, '7322-8830-2939', '6796-1617')", Write, &["sbtest1"]),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn orm_and_dml() {
        check(&[
            ("SELECT `app_user`.`id`, `app_user`.`username`, `app_user`.`email` FROM `app_user` WHERE `app_user`.`id` = 1 LIMIT 21", Read, &["app_user"]),
            ("select u1_0.id,u1_0.name from users u1_0 where u1_0.id=?", Read, &["users"]),
            ("select o1_0.id,c1_0.name from orders o1_0 join customers c1_0 on c1_0.id=o1_0.customer_id where o1_0.status=? order by o1_0.created_at desc", Read, &["orders", "customers"]),
            ("SELECT `users`.* FROM `users` WHERE `users`.`id` = 1 LIMIT 1", Read, &["users"]),
            ("INSERT INTO `users` (`name`, `email`, `created_at`) VALUES ('bob', 'b@x.io', '2024-01-01 00:00:00.000000')", Write, &["users"]),
            ("INSERT INTO users (name, email) VALUES ('alice', 'alice@example.com')", Write, &["users"]),
            ("SELECT users.id FROM users WHERE users.id IN (SELECT orders.user_id FROM orders WHERE orders.total > 100.5)", Read, &["users", "orders"]),
            ("SELECT a.x FROM a JOIN db.b ON a.id = b.id WHERE a.y IN (SELECT y FROM c)", Read, &["a", "db.b", "c"]),
            ("SELECT * FROM a LEFT JOIN a AS a2 ON a2.p = a.id, (SELECT 1 AS one FROM d) AS sub", Read, &["a", "d"]),
            ("WITH recent AS (SELECT * FROM posts WHERE id > 10) SELECT * FROM recent JOIN authors ON 1=1", Read, &["posts", "authors"]),
            ("INSERT INTO counters (id, n) VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + VALUES(n)", Write, &["counters"]),
            ("REPLACE INTO kv (k, v) VALUES ('a', 'b')", Write, &["kv"]),
            ("INSERT INTO archive (id, body) SELECT id, body FROM posts WHERE created < '2020-01-01'", Write, &["archive", "posts"]),
            ("UPDATE jobs SET owner = 'w1' WHERE owner IS NULL ORDER BY id LIMIT 10", Write, &["jobs"]),
            ("UPDATE orders o JOIN customers c ON o.customer_id = c.id SET o.vip = 1 WHERE c.tier = 'gold'", Write, &["orders", "customers"]),
            ("DELETE o FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.deleted = 1", Write, &["orders", "customers"]),
            ("DELETE FROM a USING a JOIN b ON a.id = b.id WHERE b.z = 1", Write, &["a", "b"]),
            ("WITH c AS (SELECT id FROM t) UPDATE t SET a = 1 WHERE id IN (SELECT id FROM c)", Write, &["t"]),
            ("CALL refresh_stats(1)", Write, &[]),
            ("SELECT * FROM t WHERE id = 1 FOR UPDATE", Read, &["t"]),
            ("DESC t", Read, &["t"]),
            ("EXPLAIN SELECT * FROM t", Read, &["t"]),
            ("SHOW CREATE TABLE t", Read, &["t"]),
            ("SHOW TABLES", Read, &[]),
            ("VALUES ROW(1, 2)", Read, &[]),
            ("SELECT 1 FROM DUAL", Read, &[]),
            ("SELECT * FROM `db`.`t` AS `x` UNION ALL SELECT * FROM information_schema.COLUMNS", Read, &["db.t", "information_schema.COLUMNS"]),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn ddl() {
        check(&[
            ("CREATE TABLE `users` (`id` INT UNSIGNED NOT NULL AUTO_INCREMENT, `kind` ENUM('a','b') NOT NULL DEFAULT 'a', `created` DATETIME DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (`id`), KEY `idx_kind` (`kind`), UNIQUE KEY `u_created` (`created`)) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci", Ddl, &["users"]),
            ("CREATE TABLE IF NOT EXISTS app.t2 LIKE app.t1", Ddl, &["app.t2", "app.t1"]),
            ("CREATE TABLE t3 AS SELECT * FROM t1", Ddl, &["t3", "t1"]),
            ("ALTER TABLE users ADD COLUMN age INT UNSIGNED NULL AFTER email", Ddl, &["users"]),
            ("ALTER TABLE users DROP COLUMN age", Ddl, &["users"]),
            ("ALTER TABLE t ADD INDEX idx_a (a), ADD UNIQUE KEY uk (b)", Ddl, &["t"]),
            ("CREATE INDEX idx_email ON users (email)", Ddl, &["users"]),
            ("CREATE UNIQUE INDEX ux ON db2.users (email)", Ddl, &["db2.users"]),
            ("DROP INDEX idx_email ON users", Ddl, &["users"]),
            ("DROP TABLE IF EXISTS old_users, db.b", Ddl, &["old_users", "db.b"]),
            ("TRUNCATE TABLE sessions", Ddl, &["sessions"]),
            ("TRUNCATE sessions", Ddl, &["sessions"]),
            ("RENAME TABLE a TO a_old, a_new TO a", Ddl, &["a", "a_old", "a_new"]),
            ("CREATE VIEW active AS SELECT * FROM users WHERE active = 1", Ddl, &["active", "users"]),
            ("DROP VIEW IF EXISTS active", Ddl, &["active"]),
            ("CREATE DATABASE IF NOT EXISTS app", Ddl, &[]),
            ("CREATE DATABASE app2", Ddl, &[]),
            ("DROP DATABASE app", Ddl, &[]),
            ("DROP PROCEDURE IF EXISTS p", Ddl, &[]),
            ("DROP TRIGGER tr", Ddl, &[]),
            ("/*!50003 CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */;", Ddl, &["t"]),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn session_transaction_other() {
        check(&[
            ("SET NAMES utf8mb4", Session, &[]),
            ("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", Session, &[]),
            ("SET autocommit=0", Session, &[]),
            ("SET @x = 1", Session, &[]),
            ("SET SESSION sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE'", Session, &[]),
            ("SET @@session.time_zone = '+00:00'", Session, &[]),
            ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", Session, &[]),
            ("/*!40101 SET NAMES utf8 */;", Session, &[]),
            ("USE db", Session, &[]),
            ("SELECT c INTO @v FROM t WHERE id = 1", Session, &["t"]),
            ("SELECT @rn := @rn + 1 AS rn, id FROM t", Session, &["t"]),
            ("START TRANSACTION READ ONLY", Transaction, &[]),
            ("ROLLBACK", Transaction, &[]),
            ("SAVEPOINT a", Transaction, &[]),
            ("ROLLBACK TO SAVEPOINT a", Transaction, &[]),
            ("RELEASE SAVEPOINT a", Transaction, &[]),
            ("GRANT SELECT ON db.* TO 'u'@'%'", Other, &[]),
            ("FLUSH TABLES", Other, &[]),
            ("KILL 5", Other, &[]),
            ("LOCK TABLES t WRITE", Other, &["t"]),
            ("UNLOCK TABLES", Other, &[]),
            ("ANALYZE TABLE t", Other, &["t"]),
        ]);
    }

    #[test]
    fn transaction_ops() {
        let op = |sql| one(sql).txn;
        assert_eq!(op("BEGIN"), Some(TxnOp::Begin));
        assert_eq!(op("START TRANSACTION READ ONLY"), Some(TxnOp::Begin));
        assert_eq!(op("COMMIT"), Some(TxnOp::Commit));
        assert_eq!(op("ROLLBACK"), Some(TxnOp::Rollback));
        assert_eq!(op("SAVEPOINT a"), Some(TxnOp::Savepoint));
        assert_eq!(op("RELEASE SAVEPOINT a"), Some(TxnOp::ReleaseSavepoint));
        assert_eq!(
            op("ROLLBACK TO SAVEPOINT a"),
            Some(TxnOp::RollbackToSavepoint)
        );
        assert_eq!(op("SELECT 1"), None);
    }

    #[test]
    fn flags() {
        assert!(one("SELECT * FROM t WHERE id = 1 FOR UPDATE").locking_read);
        assert!(one("SELECT * FROM t WHERE id = 1 FOR SHARE").locking_read);
        assert!(!one("SELECT * FROM t WHERE id = 1").locking_read);
        assert!(one("SELECT a FROM t ORDER BY a").ordered);
        assert!(!one("SELECT a FROM t WHERE id IN (SELECT id FROM u ORDER BY id)").ordered);
        assert!(one("SELECT 1").query && one("WITH c AS (SELECT 1) SELECT * FROM c").query);
        assert!(!one("SHOW TABLES").query && !one("EXPLAIN SELECT 1").query);
        assert!(!one("SELECT a INTO @v FROM t").query);
        for sql in [
            "SELECT RAND() FROM t",
            "SELECT NOW()",
            "SELECT CURRENT_TIMESTAMP",
            "INSERT INTO t (id) VALUES (UUID())",
            "UPDATE t SET at = UTC_TIMESTAMP() WHERE id = 1",
            "SELECT UNIX_TIMESTAMP()",
            "SELECT LAST_INSERT_ID()",
            "SELECT * FROM t LIMIT 10",
            "DELETE FROM t WHERE a = 1 LIMIT 10",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u LIMIT 5) ORDER BY id",
            "SELECT @@max_allowed_packet",
            "SELECT @@session.sql_mode",
            "SELECT @v",
        ] {
            assert!(one(sql).nondeterministic, "{sql}");
        }
        for sql in [
            "SELECT * FROM t ORDER BY id LIMIT 10",
            "SELECT UNIX_TIMESTAMP(created) FROM t",
            "UPDATE t SET a = 1 WHERE id = 2",
            "CREATE TABLE t (a DATETIME DEFAULT CURRENT_TIMESTAMP)",
        ] {
            assert!(!one(sql).nondeterministic, "{sql}");
        }
    }

    #[test]
    fn multi_statement_takes_most_severe() {
        let c = parsed("UPDATE t SET a=1; SELECT * FROM t");
        assert_eq!(c.class, Write);
        assert_eq!(c.statements.len(), 2);
        assert_eq!(
            (c.statements[0].class, c.statements[1].class),
            (Write, Read)
        );
        assert_eq!(
            parsed("SELECT 1; ALTER TABLE t ADD COLUMN b INT; BEGIN").class,
            Ddl
        );
        assert_eq!(parsed("SELECT 1; SET @a = 1; SHOW TABLES").class, Session);
    }

    #[test]
    fn empty_and_comment_only() {
        for sql in ["", "   ", "-- nothing\n", "/* x */ ;", "# c"] {
            let c = Classifier::new(8).classify(sql);
            assert_eq!(
                (c.class, c.parsed, c.statements.len()),
                (Other, true, 0),
                "{sql:?}"
            );
        }
    }

    #[test]
    fn unparsable_is_write_and_counted() {
        let classifier = Classifier::new(64);
        let corpus = [
            "SELECT x MOD 3 FROM t",
            "DO 1",
            "OPTIMIZE TABLE t",
            "LOAD DATA INFILE '/tmp/x' INTO TABLE t",
            "CREATE PROCEDURE p() BEGIN SELECT 1; END",
            "SELECT 1 /* unterminated",
            "SELECT 'unterminated",
            "))))((((",
        ];
        for sql in corpus {
            let c = classifier.classify(sql);
            assert_eq!(
                (c.class, c.parsed, c.statements.len()),
                (Write, false, 0),
                "{sql}"
            );
        }
        assert_eq!(classifier.parse_failures(), corpus.len() as u64);
        // Cached failures still count, and are logged only once.
        classifier.classify("DO 2");
        assert_eq!(classifier.parse_failures(), corpus.len() as u64 + 1);
        assert_eq!(lock(&classifier.logged).len(), corpus.len());
        // Uncached too: the logged set, not the cache, suppresses repeats.
        let uncached = Classifier::new(0);
        uncached.classify("DO 1");
        uncached.classify("DO 2");
        assert_eq!(
            (uncached.parse_failures(), lock(&uncached.logged).len()),
            (2, 1)
        );
    }

    #[test]
    fn deep_nesting_fails_without_panic() {
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let c = Classifier::new(4).classify(&sql);
        assert_eq!((c.class, c.parsed), (Write, false));
    }

    #[test]
    fn long_operator_chains_do_not_overflow_the_stack() {
        // Run on a small stack, as a worker thread would.
        let handle = std::thread::Builder::new().stack_size(512 << 10).spawn(|| {
            let classifier = Classifier::new(4);
            let or_chain = format!("SELECT * FROM t WHERE a = 0{}", " OR a = 1".repeat(60_000));
            let plus_chain = format!("SELECT 1{}", "+1".repeat(100_000));
            // Largest chain still parsed on the caller's stack.
            let inline = format!("SELECT 1{}", "+1".repeat((INLINE_PARSE_MAX - 8) / 2));
            let huge = format!("SELECT 1{}", "+1".repeat(MAX_PARSE_LEN));
            [or_chain, plus_chain, inline, huge].map(|sql| {
                let c = classifier.classify(&sql);
                (c.class, c.parsed)
            })
        });
        let results = handle.map(|h| h.join());
        assert!(matches!(
            results,
            Ok(Ok([
                (Read, true),
                (Read, true),
                (Read, true),
                (Write, false)
            ]))
        ));
    }

    #[test]
    fn cache_hit_across_literals() {
        let classifier = Classifier::new(100);
        let a = classifier.classify("SELECT c FROM sbtest1 WHERE id=1 AND name IN ('a', 'b')");
        let b = classifier.classify("SELECT c FROM sbtest1  WHERE id=99 AND name IN ('z') -- hi");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(classifier.cache_len(), 1);
        let other = classifier.classify("SELECT c FROM sbtest2 WHERE id=1 AND name IN ('a')");
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(classifier.cache_len(), 2);
    }

    #[test]
    fn capacity_is_bounded() {
        for capacity in [0, 1, 5, 16, 40] {
            let classifier = Classifier::new(capacity);
            for i in 0..200 {
                classifier.classify(&format!("SELECT c{i} FROM t WHERE id = {i}"));
            }
            assert!(classifier.cache_len() <= capacity, "capacity {capacity}");
            if capacity >= 16 {
                assert!(
                    classifier.cache_len() >= capacity / 2,
                    "capacity {capacity} underused"
                );
            }
        }
    }

    #[test]
    fn hash_collision_is_not_a_hit() {
        let classifier = Classifier::new(16);
        let real = classifier.classify("SELECT * FROM t");
        // Plant a different fingerprint under the same hash key.
        let hash = hash_fingerprint(&real.fingerprint);
        let fake = Arc::new(Classified {
            fingerprint: "SELECT * FROM u".into(),
            ..(*real).clone()
        });
        if let Some(shard) = classifier.shard(hash) {
            lock(shard).put(hash, fake);
        }
        let again = classifier.classify("SELECT * FROM t");
        assert_eq!(again.fingerprint, "SELECT * FROM t");
        assert_eq!(again.statements[0].tables, ["t"]);
    }

    #[test]
    fn concurrent_use_and_poisoned_lock() {
        let classifier = Classifier::new(32);
        std::thread::scope(|s| {
            for t in 0..4 {
                let c = &classifier;
                s.spawn(move || {
                    for i in 0..200 {
                        let r =
                            c.classify(&format!("UPDATE t{} SET a = {i} WHERE id = {i}", i % 8));
                        assert_eq!(r.class, Write, "thread {t}");
                    }
                });
            }
        });
        // A panic while holding a shard lock must not break later calls.
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = classifier.shards[0].lock();
                panic!("poison the shard (expected in this test)");
            })
            .join()
        });
        for i in 0..64 {
            assert_eq!(
                classifier.classify(&format!("SELECT * FROM p{i}")).class,
                Read
            );
        }
    }
}
