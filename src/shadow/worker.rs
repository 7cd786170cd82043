//! One background comparer: takes a sampled read off the queue, gets both
//! answers (the relayed one, or the primary run again), waits for the
//! session's mirrored writes, compares, rechecks a difference once and logs
//! it if it persists. Stops between comparisons at shutdown.

use super::*;

/// One background comparer with its own connection to each backend.
pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) deps: ShadowDeps,
    pub(super) stop: StopSignal,
    pub(super) old: Option<SideConn>,
    pub(super) new: Option<SideConn>,
}

/// How long to wait between looks at the mirror's progress.
const POLL: Duration = Duration::from_millis(2);

impl Worker {
    pub(super) async fn run(mut self) {
        loop {
            let job = tokio::select! {
                biased;
                _ = self.stop.stopped() => break,
                job = async { self.shared.rx.lock().await.recv().await } => job,
            };
            let Some(job) = job else { break };
            let deps = self.deps.clone();
            let span = tracing::debug_span!("shadow", session = job.session);
            let bytes = job.bytes() as i64;
            let stop = self.stop.clone();
            tokio::select! {
                _ = self.handle(&deps, job).instrument(span) => {}
                // A comparison still running at the shutdown bound is
                // abandoned (its connections close with the worker).
                _ = stop.past_deadline() => {
                    self.shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.shared.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.shared
                .stats
                .queued_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    async fn handle(&mut self, state: &ShadowDeps, job: Job) {
        let config = state.snapshot.load().config.shadow.clone();
        let stats = Arc::clone(&self.shared.stats);
        let timeout = Duration::from_millis(config.timeout_ms);
        let max_rows = config.max_rows as usize;
        // The authoritative answer as the client got it, when it was copied.
        let relayed = match &job.relayed {
            Some(r) if !r.capture.overflowed() => {
                let result = match capture::decode(&r.capture, r.binary, r.deprecate_eof, max_rows)
                {
                    Decoded::Rows(rows) => Ok(rows),
                    Decoded::Error(e) => Err(e),
                    Decoded::Unsupported(why) => {
                        tracing::debug!(why, "shadow read not compared");
                        stats.skipped_unsupported.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                Some(Answer {
                    result,
                    latency: r.latency,
                    translated: None,
                })
            }
            _ => None,
        };
        // The session's own writes must be on the other side first.
        if let Some((progress, handed)) = &job.session_writes {
            wait_for(timeout, || progress.reached(*handed)).await;
        }
        if relayed.is_some() {
            self.wait_stream(state, &job, timeout).await;
        }
        let first = match relayed {
            Some(primary) => self
                .run_on(state, &job, other(job.primary), max_rows, timeout)
                .await
                .map(|secondary| (primary, secondary)),
            None => self.both(state, &job, max_rows, timeout).await,
        };
        let (primary, secondary) = match first {
            Ok(pair) => pair,
            Err(e) => return self.not_run(e),
        };
        let translated = secondary
            .translated
            .as_deref()
            .or(primary.translated.as_deref());
        state.statements.record(
            &job.fingerprint,
            job.primary,
            primary.latency,
            secondary.latency,
            translated,
        );
        let sample = config.sample_rows as usize;
        let Some(found) = judge(&primary, &secondary, job.ordered, sample) else {
            stats.matched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (primary, secondary, found) = if config.recheck {
            let (p, s) = match self.both(state, &job, max_rows, timeout).await {
                Ok(pair) => pair,
                Err(e) => return self.not_run(e),
            };
            match judge(&p, &s, job.ordered, sample) {
                // Gone, or a different difference (other rows, other counts):
                // writes were landing while we looked. A real divergence
                // shows the same rows both times.
                Some(again) if again.same_as(&found) && p.rows() == primary.rows() => (p, s, again),
                _ => {
                    stats.transient.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        } else {
            (primary, secondary, found)
        };
        stats.mismatched.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            category = found.category.as_str(),
            fingerprint = %job.fingerprint,
            "shadow read mismatch"
        );
        if !self
            .shared
            .allow(&job.fingerprint, config.max_logged_per_minute)
        {
            stats.log_suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let translated = secondary.translated.clone().or(primary.translated.clone());
        let record = MismatchRecord {
            time: now_rfc3339(),
            session: job.session,
            fingerprint: job.fingerprint,
            statement: job.statement,
            translated,
            category: found.category,
            primary: target_name(job.primary).into(),
            rows: PerSide {
                primary: primary.rows(),
                secondary: secondary.rows(),
            },
            columns: found.columns,
            sample: found.sample,
            error: found.error,
            latency_us: PerSide {
                primary: primary.latency.as_micros() as u64,
                secondary: secondary.latency.as_micros() as u64,
            },
            hashed: found.hashed,
        };
        self.shared.write(&config.log, record);
    }

    /// A side could not be asked: not a difference, but counted.
    fn not_run(&self, e: RunError) {
        let stats = &self.shared.stats;
        match e {
            RunError::Untranslatable(why) => {
                tracing::debug!(%why, "shadow read not translatable");
                stats.skipped_unsupported.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                tracing::debug!(error = %other, "shadow read not run");
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs the statement on the primary, then on the other backend once
    /// every write mirrored before the primary's answer has been applied
    /// there: both see the same writes unless more arrive in between.
    async fn both(
        &mut self,
        state: &ShadowDeps,
        job: &Job,
        max_rows: usize,
        timeout: Duration,
    ) -> Result<(Answer, Answer), RunError> {
        let mirror = state.mirror.load_full();
        let mirrored = mirror
            .as_ref()
            .map(|m| m.stats.accepted.load(Ordering::Relaxed));
        let primary = self
            .run_on(state, job, job.primary, max_rows, timeout)
            .await?;
        if let (Some(m), Some(target)) = (&mirror, mirrored) {
            wait_for(timeout, || {
                m.stats.applied.load(Ordering::Relaxed) >= target
            })
            .await;
        }
        self.wait_stream(state, job, timeout).await;
        let secondary = self
            .run_on(state, job, other(job.primary), max_rows, timeout)
            .await?;
        Ok((primary, secondary))
    }

    /// With the change stream mirroring, a comparison against the new side
    /// waits until the stream applied what the old side had committed when
    /// it answered (bounded; counted when it was not reached in time).
    async fn wait_stream(&mut self, state: &ShadowDeps, job: &Job, timeout: Duration) {
        let snapshot = state.snapshot.load_full();
        let config = &snapshot.config;
        let (Target::Old, Some(new), StreamSourceKind::Binlog) = (
            job.primary,
            config.backends.new.as_ref(),
            config.mirror.source,
        ) else {
            return;
        };
        let stream_id = crate::stream::stream_id(config);
        let backends = (&config.backends.old, new);
        if !side::stream_reached(&mut self.old, &mut self.new, backends, &stream_id, timeout).await
        {
            self.shared
                .stats
                .stream_not_reached
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs the job's statement on `target`.
    async fn run_on(
        &mut self,
        state: &ShadowDeps,
        job: &Job,
        target: Target,
        max_rows: usize,
        timeout: Duration,
    ) -> Result<Answer, RunError> {
        let snapshot = state.snapshot.load_full();
        let config = &snapshot.config;
        let backend = match target {
            Target::Old => &config.backends.old,
            Target::New => config
                .backends
                .new
                .as_ref()
                .ok_or_else(|| RunError::Config("[backends.new] is not configured".into()))?,
        };
        let slot = match target {
            Target::Old => &mut self.old,
            Target::New => &mut self.new,
        };
        let schema = state.schema.load_full();
        side::run(slot, backend, job, &schema, max_rows, timeout).await
    }
}

/// What differs, ready for the log.
struct Found {
    category: Category,
    columns: Vec<String>,
    sample: Vec<log::SampleRow>,
    error: Option<SideError>,
    hashed: bool,
}

impl Found {
    /// The same difference: same category, same differing rows.
    fn same_as(&self, other: &Found) -> bool {
        self.category == other.category && self.sample == other.sample && self.error == other.error
    }
}

fn judge(primary: &Answer, secondary: &Answer, ordered: bool, sample: usize) -> Option<Found> {
    match (&primary.result, &secondary.result) {
        // Both failed: the new backend is as unhappy as the old one.
        (Err(_), Err(_)) => None,
        (Err(e), Ok(rows)) => Some(Found {
            category: Category::ErrorPrimaryOnly,
            columns: rows.columns.clone(),
            sample: Vec::new(),
            error: Some(e.clone()),
            hashed: false,
        }),
        (Ok(rows), Err(e)) => Some(Found {
            category: Category::ErrorSecondaryOnly,
            columns: rows.columns.clone(),
            sample: Vec::new(),
            error: Some(e.clone()),
            hashed: false,
        }),
        (Ok(p), Ok(s)) => compare(p, s, ordered, sample).map(|d| Found {
            category: d.category,
            columns: p.columns.clone(),
            sample: d.sample,
            error: None,
            hashed: d.hashed,
        }),
    }
}

/// Polls `done` until it holds or `timeout` has passed: the mirror's
/// progress is counters, with nothing to wait on.
async fn wait_for(timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

fn other(t: Target) -> Target {
    match t {
        Target::Old => Target::New,
        Target::New => Target::Old,
    }
}

fn target_name(t: Target) -> &'static str {
    match t {
        Target::Old => "old",
        Target::New => "new",
    }
}

impl Answer {
    fn rows(&self) -> u64 {
        self.result.as_ref().map_or(0, |r: &Collected| r.count)
    }
}
