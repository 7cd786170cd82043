//! Hot-path cost of statement analysis.
//!
//! * `fingerprint/*`: the literal-stripping scanner alone.
//! * `classify/cold/*`: a capacity-0 classifier, so every call fingerprints
//!   and runs sqlparser (the cost of a cache miss).
//! * `classify/cached/*`: a warm classifier fed texts whose literals change on
//!   every iteration (fingerprint + hash + cache hit), the steady state.
//! * `classify/cached_contended/*`: the same while a second thread classifies
//!   the same statements, as two session threads serving one hot query do
//!   (what the classifier's per-thread front cache is for).
//! * `new_primary_insert/*`: what the PostgreSQL-authoritative side does to
//!   an INSERT with `NOW()` on a classification cache miss — classify, find
//!   the pins, write the values in, translate. `reparse` is the old route
//!   (three parses: classify, pin, translate of the edited text), `one_parse`
//!   the current one (`sql::parse::Parsed`, values substituted in the AST).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tandem::sql::classify::Classifier;
use tandem::sql::fingerprint::fingerprint;
use tandem::sql::parse::Parsed;
use tandem::sql::pin;
use tandem::sql::schema::{Schema, TableInfo};
use tandem::sql::translate;

/// Number of literal variants cycled through by the cached benchmarks.
const VARIANTS: usize = 1024;

type Render = fn(usize) -> String;

fn statements() -> [(&'static str, Render); 4] {
    [
        ("point_select", |n| {
            format!("SELECT id, name, email FROM users WHERE id = {n} LIMIT 1")
        }),
        ("update", |n| {
            format!("UPDATE sbtest1 SET c = '{n}-{n}-{n}' WHERE id = {n}")
        }),
        ("insert4", |n| {
            format!("INSERT INTO sbtest1 (id, k, c, pad) VALUES ({n}, {n}, '{n}-c', '{n}-pad')")
        }),
        ("range_order", |n| {
            format!(
                "SELECT c FROM sbtest1 WHERE id BETWEEN {n} AND {} ORDER BY c",
                n + 99
            )
        }),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, render) in statements() {
        let variants: Vec<String> = (0..VARIANTS)
            .map(|i| render(4_000_000 + i * 7919))
            .collect();
        let sample = &variants[0];

        c.bench_function(&format!("fingerprint/{name}"), |b| {
            b.iter(|| fingerprint(black_box(sample)))
        });

        let cold = Classifier::new(0);
        c.bench_function(&format!("classify/cold/{name}"), |b| {
            b.iter(|| cold.classify(black_box(sample)))
        });

        let warm = Classifier::new(4096);
        for v in &variants {
            warm.classify(v);
        }
        assert_eq!(
            warm.cache_len(),
            1,
            "{name}: literal variants must share one entry"
        );
        let mut i = 0;
        c.bench_function(&format!("classify/cached/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % VARIANTS;
                warm.classify(black_box(&variants[i]))
            })
        });

        // The same while another thread classifies the same statement, as
        // two session threads serving one hot query do.
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut j = 0;
                while !stop.load(Ordering::Relaxed) {
                    j = (j + 1) % VARIANTS;
                    black_box(warm.classify(&variants[j]));
                }
            });
            c.bench_function(&format!("classify/cached_contended/{name}"), |b| {
                b.iter(|| {
                    i = (i + 1) % VARIANTS;
                    warm.classify(black_box(&variants[i]))
                })
            });
            stop.store(true, Ordering::Relaxed);
        });
    }
}

fn insert_schema() -> Schema {
    let mut s = Schema::default();
    s.insert(TableInfo::simple(
        "orders",
        &[
            ("id", "bigint(20) unsigned", true),
            ("customer", "int(11)", false),
            ("note", "varchar(100)", false),
            ("total", "decimal(10,2)", false),
            ("created", "datetime", false),
        ],
    ));
    s
}

fn new_primary_insert(c: &mut Criterion) {
    let schema = insert_schema();
    let sql = "INSERT INTO orders (customer, note, total, created) VALUES (42, 'gift wrap', 19.99, NOW())";
    let cold = Classifier::new(0);
    let edits = |shape: &pin::WriteShape| -> Vec<_> {
        shape
            .pins
            .iter()
            .map(|p| (p.range.clone(), pin::evaluate_locally(p, 7)))
            .collect()
    };
    c.bench_function("new_primary_insert/reparse", |b| {
        b.iter(|| {
            let classified = cold.classify(black_box(sql));
            let shape = pin::analyze(sql).expect("analyzed");
            let text = pin::apply_edits(sql, edits(&shape));
            let out = translate::to_postgres(&text, &schema).expect("translated");
            (classified, out)
        })
    });
    c.bench_function("new_primary_insert/one_parse", |b| {
        b.iter(|| {
            let mut parsed = Parsed::new(black_box(sql));
            let classified = cold.classify_parsed(&mut parsed);
            let shape = pin::analyze_parsed(&mut parsed).expect("analyzed");
            let edits = edits(&shape);
            let text = pin::apply_edits(sql, edits.clone());
            let out = translate::to_postgres_parsed(&mut parsed, &schema, &edits);
            (classified, text, out.expect("translated"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench, new_primary_insert
}
criterion_main!(benches);
