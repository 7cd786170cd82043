//! `[reads.ramp]`: the steps and gates of the self-gating read ramp, and the
//! human duration strings (`"10m"`, `"90s"`, `"1h30m"`) its hold is written in.
//! Part of the config (it is a config section); the controller in
//! `cockpit::ramp` reads it.

use std::time::Duration;

use serde::Deserialize;

/// Where a failed gate sends the read share.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepBack {
    /// One step down (0 below the first step).
    #[default]
    Previous,
    /// Straight back to 0: no reads on the new backend.
    Zero,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RampConfig {
    /// Read shares (percent, ascending, each in (0, 100]) the ramp climbs.
    pub steps: Vec<f64>,
    /// How long every gate must pass at a step before the next one.
    pub hold: String,
    /// Most shadow mismatches per compared read (0–1) in a hold window.
    pub max_mismatch_rate: f64,
    /// Most by which the new backend's routed-read error rate (errors and
    /// fallbacks per routed read, 0–1) may exceed the old backend's.
    pub max_error_rate_increase: f64,
    /// Most p95 latency of reads answered by the new backend, in ms; 0 = no
    /// latency gate.
    pub max_p95_ms: f64,
    /// Reads a window needs before it can pass (compared reads at 0 %,
    /// routed reads above it); fewer and the ramp holds.
    pub min_samples: u64,
    pub step_back: StepBack,
}

impl Default for RampConfig {
    fn default() -> Self {
        Self {
            steps: vec![1.0, 10.0, 50.0, 100.0],
            hold: "10m".into(),
            max_mismatch_rate: 0.001,
            max_error_rate_increase: 0.01,
            max_p95_ms: 0.0,
            min_samples: 100,
            step_back: StepBack::Previous,
        }
    }
}

impl RampConfig {
    /// The hold as a duration (validated at load, so a fallback is never
    /// used in practice).
    pub fn hold(&self) -> Duration {
        parse_duration(&self.hold).unwrap_or(Duration::from_secs(600))
    }

    /// `(key, message)` of the first invalid setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.steps.is_empty() {
            return Err(("reads.ramp.steps", "needs at least one step".into()));
        }
        let mut last = 0.0;
        for s in &self.steps {
            if s.is_nan() || *s <= last || *s > 100.0 {
                return Err((
                    "reads.ramp.steps",
                    format!("must rise strictly within (0, 100]; {s} after {last}"),
                ));
            }
            last = *s;
        }
        match parse_duration(&self.hold) {
            Ok(d) if d >= Duration::from_millis(100) => {}
            Ok(_) => return Err(("reads.ramp.hold", "must be at least 100ms".into())),
            Err(e) => return Err(("reads.ramp.hold", e)),
        }
        for (key, v) in [
            ("reads.ramp.max_mismatch_rate", self.max_mismatch_rate),
            (
                "reads.ramp.max_error_rate_increase",
                self.max_error_rate_increase,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err((key, format!("is a ratio between 0 and 1, not {v}")));
            }
        }
        if self.max_p95_ms.is_nan() || self.max_p95_ms < 0.0 {
            return Err(("reads.ramp.max_p95_ms", "must be 0 (off) or more".into()));
        }
        if self.min_samples == 0 {
            return Err(("reads.ramp.min_samples", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Parses `"500ms"`, `"30s"`, `"10m"`, `"2h"` and sums like `"1h30m"`; a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (write e.g. \"10m\", \"30s\")".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (write e.g. \"10m\", \"30s\")"))?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hours" => 3600.0,
            other => return Err(format!("`{text}`: unknown unit `{other}` (ms, s, m, h)")),
        };
        total += n * scale;
        rest = next.trim_start();
    }
    secs_to_duration(total, text)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=31_536_000.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (0 to a year)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-3").is_err());
    }

    fn config(ramp: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let text = format!(
            "[[users]]\nname = \"a\"\npassword = \"b\"\n[backends.old]\nkind = \"mysql\"\n\
             url = \"mysql://u:p@127.0.0.1:1/d\"\n{ramp}"
        );
        crate::config::Config::from_toml(&text, |_| None)
    }

    #[test]
    fn ramp_is_read_from_the_config_file_validated_and_diffed_on_reload() {
        let a = config("[reads.ramp]\nsteps = [5, 100]\nhold = \"1m\"\n").unwrap();
        let ramp = a.reads.ramp.as_ref().unwrap();
        assert_eq!(ramp.steps, [5.0, 100.0]);
        assert_eq!(ramp.hold(), Duration::from_secs(60));
        assert_eq!(ramp.min_samples, 100, "defaults fill the rest");
        assert!(config("").unwrap().reads.ramp.is_none());
        let err = config("[reads.ramp]\nhold = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("reads.ramp.hold:"), "{err}");
        let err = config("[reads.ramp]\nstep = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("step"), "{err}");
        let b = config("[reads.ramp]\nsteps = [5, 100]\nhold = \"2m\"\n").unwrap();
        let diff = crate::reload::diff(&a, &b);
        assert!(
            diff.iter()
                .any(|d| d.starts_with("reads.ramp ") && d.contains("hold=2m")),
            "{diff:?}"
        );
    }

    #[test]
    fn ramp_settings_are_validated_with_the_key_named() {
        assert!(RampConfig::default().validate().is_ok());
        let bad = |f: fn(&mut RampConfig)| {
            let mut c = RampConfig::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(|c| c.steps = vec![]), "reads.ramp.steps");
        assert_eq!(bad(|c| c.steps = vec![10.0, 5.0]), "reads.ramp.steps");
        assert_eq!(bad(|c| c.steps = vec![0.0, 5.0]), "reads.ramp.steps");
        assert_eq!(bad(|c| c.steps = vec![50.0, 150.0]), "reads.ramp.steps");
        assert_eq!(bad(|c| c.hold = "soon".into()), "reads.ramp.hold");
        assert_eq!(bad(|c| c.hold = "1ms".into()), "reads.ramp.hold");
        assert_eq!(
            bad(|c| c.max_mismatch_rate = 2.0),
            "reads.ramp.max_mismatch_rate"
        );
        assert_eq!(
            bad(|c| c.max_error_rate_increase = -0.1),
            "reads.ramp.max_error_rate_increase"
        );
        assert_eq!(bad(|c| c.max_p95_ms = f64::NAN), "reads.ramp.max_p95_ms");
        assert_eq!(bad(|c| c.min_samples = 0), "reads.ramp.min_samples");
    }
}
