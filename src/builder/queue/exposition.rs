//! The text `serve` puts on `/metrics`: Prometheus' text exposition format (version 0.0.4).
//! Pure. Every family has its HELP and TYPE lines; labels come only from bounded sets (the
//! config's targets, the builder's states and reasons), and every series a family can have is
//! written, at 0 if nothing happened yet, so a rate or an alert never sees a missing series.

use crate::builder::queue::counters::{Histogram, TargetCounters, Timing, NO_REASON};
use crate::builder::queue::lag::Gauges;
use crate::builder::state::{fits, Reason, State};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The content type of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value as the format wants it: backslash, double quote and newline escaped.
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn seconds(ms: u64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// `builder_pending_jobs{workspace,target}`: the number KEDA scales on.
pub fn render_pending(workspace: &str, pending: &[(String, u64)]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "builder_pending_jobs",
        "gauge",
        "Builds waiting for a worker (the consumer group's lag, as KEDA reads it).",
    );
    for (target, n) in pending {
        let l = labels(&[("workspace", workspace), ("target", target)]);
        let _ = writeln!(out, "builder_pending_jobs{l} {n}");
    }
    out
}

/// Every `(state, reason)` a build can end with, in a stable order.
pub fn end_pairs() -> Vec<(State, Option<Reason>)> {
    let reasons: Vec<Option<Reason>> = std::iter::once(None)
        .chain(Reason::ALL.into_iter().map(Some))
        .collect();
    State::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .flat_map(|s| reasons.iter().map(move |r| (s, *r)))
        .filter(|(s, r)| fits(*s, *r))
        .collect()
}

fn histogram(out: &mut String, name: &str, t: Timing, ws: &str, target: &str, h: &Histogram) {
    let mut cumulative = 0u64;
    for (bound, n) in t.bounds_ms().iter().zip(&h.buckets) {
        cumulative += n;
        let le = seconds(*bound);
        let l = labels(&[("workspace", ws), ("target", target), ("le", &le)]);
        let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
    }
    // +Inf is the count: the same number by definition, whatever a bucket field holds.
    let count = h.count.max(cumulative + h.overflow);
    let l = labels(&[("workspace", ws), ("target", target), ("le", "+Inf")]);
    let _ = writeln!(out, "{name}_bucket{l} {count}");
    let l = labels(&[("workspace", ws), ("target", target)]);
    let _ = writeln!(out, "{name}_sum{l} {}", seconds(h.sum_ms));
    let _ = writeln!(out, "{name}_count{l} {count}");
}

/// Reads one plain counter of a target.
type Count = fn(&TargetCounters) -> u64;

/// The whole `/metrics` text: the queue's gauges (read from the streams) and the counters the
/// transitions recorded, one series per target of the config.
pub fn render(workspace: &str, gauges: &[Gauges], counters: &[(String, TargetCounters)]) -> String {
    let ws = workspace;
    let pending: Vec<(String, u64)> = gauges
        .iter()
        .map(|g| (g.target.clone(), g.pending))
        .collect();
    let mut out = render_pending(ws, &pending);

    family(
        &mut out,
        "builder_running_jobs",
        "gauge",
        "Builds held by a worker (delivered, not yet acknowledged).",
    );
    for g in gauges {
        let l = labels(&[("workspace", ws), ("target", &g.target)]);
        let _ = writeln!(out, "builder_running_jobs{l} {}", g.running);
    }

    family(
        &mut out,
        "builder_oldest_pending_age_seconds",
        "gauge",
        "How long the oldest build waiting for a worker has waited (0 when none waits).",
    );
    for g in gauges {
        let l = labels(&[("workspace", ws), ("target", &g.target)]);
        let _ = writeln!(
            out,
            "builder_oldest_pending_age_seconds{l} {}",
            seconds(g.oldest_pending_ms)
        );
    }

    family(
        &mut out,
        "builder_jobs_ended_total",
        "counter",
        "Builds that reached a final state, by state and reason (reason \"none\" for succeeded).",
    );
    for (target, c) in counters {
        let mut pairs: BTreeSet<(String, String)> = end_pairs()
            .into_iter()
            .map(|(s, r)| {
                (
                    s.as_str().to_string(),
                    r.map_or(NO_REASON, Reason::as_str).to_string(),
                )
            })
            .collect();
        pairs.extend(c.ended.keys().cloned());
        for (state, reason) in pairs {
            let n = c
                .ended
                .get(&(state.clone(), reason.clone()))
                .copied()
                .unwrap_or(0);
            let l = labels(&[
                ("workspace", ws),
                ("target", target),
                ("state", &state),
                ("reason", &reason),
            ]);
            let _ = writeln!(out, "builder_jobs_ended_total{l} {n}");
        }
    }

    family(
        &mut out,
        "builder_queue_wait_seconds",
        "histogram",
        "Time from entering the queue (submit, or re-queue for a later attempt) to a worker taking the build.",
    );
    for (target, c) in counters {
        let name = "builder_queue_wait_seconds";
        histogram(&mut out, name, Timing::QueueWait, ws, target, &c.queue_wait);
    }

    family(
        &mut out,
        "builder_build_duration_seconds",
        "histogram",
        "Time from a worker taking an attempt to its end (final state or re-queue).",
    );
    for (target, c) in counters {
        let name = "builder_build_duration_seconds";
        histogram(&mut out, name, Timing::Duration, ws, target, &c.duration);
    }

    let simple: [(&str, &str, Count); 3] = [
        (
            "builder_reclaimed_jobs_total",
            "Builds taken back from a worker that stopped heartbeating (worker_lost).",
            |c| c.reclaimed,
        ),
        (
            "builder_upload_errors_total",
            "Attempts whose artifacts, log or manifest could not be stored after retries (upload_failed).",
            |c| c.upload_errors,
        ),
        (
            "builder_artifact_bytes_total",
            "Bytes of artifacts stored by builds that succeeded.",
            |c| c.artifact_bytes,
        ),
    ];
    for (name, help, get) in simple {
        family(&mut out, name, "counter", help);
        for (target, c) in counters {
            let l = labels(&[("workspace", ws), ("target", target)]);
            let _ = writeln!(out, "{name}{l} {}", get(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::queue::counters::{self, TargetCounters};
    use std::collections::{BTreeMap, HashMap};

    /// One sample line read back.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    fn is_name(s: &str) -> bool {
        let mut cs = s.chars();
        cs.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// `{k="v",…}` at the start of `s`: the labels and what follows the closing brace.
    fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
        let mut labels = BTreeMap::new();
        let mut rest = s.strip_prefix('{').ok_or("no '{'")?;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return Ok((labels, r));
            }
            let (key, r) = rest.split_once("=\"").ok_or("a label without =\"")?;
            if !is_name(key) || key.starts_with("__") {
                return Err(format!("bad label name {key:?}"));
            }
            let mut value = String::new();
            let mut it = r.char_indices();
            let after = loop {
                match it.next() {
                    Some((_, '\\')) => match it.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape".into()),
                    },
                    Some((i, '"')) => break &r[i + 1..],
                    Some((_, '\n')) | None => return Err("unterminated label value".into()),
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            rest = match after.strip_prefix(',') {
                Some(r) => r,
                None if after.starts_with('}') => after,
                None => return Err("labels not separated by ','".into()),
            };
        }
    }

    /// A small reader of the text format that fails on anything the format does not allow: a
    /// sample before its family's TYPE, HELP or TYPE twice, a bad name, a badly escaped or
    /// unterminated label value, a value that is not a number.
    fn parse(text: &str) -> Result<(HashMap<String, String>, Vec<Sample>), String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helped = BTreeSet::new();
        let mut samples = Vec::new();
        if !text.ends_with('\n') {
            return Err("the last line must end with a newline".into());
        }
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
                if !helped.insert(name.to_string()) {
                    return Err(format!("HELP twice for {name}"));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(format!("bad type {kind}"));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() {
                    return Err(format!("TYPE twice for {name}"));
                }
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                return Err(format!("unexpected line {line:?}"));
            }
            let (name, labels, rest) = match line.find('{') {
                Some(i) => {
                    let (l, r) = parse_labels(&line[i..]).map_err(|e| format!("{e}: {line}"))?;
                    (&line[..i], l, r)
                }
                None => {
                    let i = line.find(' ').ok_or(format!("no value: {line}"))?;
                    (&line[..i], BTreeMap::new(), &line[i..])
                }
            };
            if !is_name(name) {
                return Err(format!("bad metric name {name:?}"));
            }
            let value = rest
                .strip_prefix(' ')
                .ok_or(format!("no space before the value: {line}"))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(name);
            match types.get(family).map(String::as_str) {
                None => return Err(format!("sample {name} before its TYPE")),
                Some("counter") if !name.ends_with("_total") => {
                    return Err(format!("counter {name} does not end in _total"))
                }
                _ => {}
            }
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        if let Some(t) = types.keys().find(|t| !helped.contains(*t)) {
            return Err(format!("{t} has no HELP"));
        }
        Ok((types, samples))
    }

    fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let hits: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                s.name == name
                    && s.labels.len() == want.len()
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(
            hits.len() <= 1,
            "{name} {want:?} appears {} times",
            hits.len()
        );
        hits.first().map(|s| s.value)
    }

    fn sample_counters() -> Vec<(String, TargetCounters)> {
        let mut f = HashMap::new();
        for (k, v) in [
            ("ended|web|succeeded|none", "4"),
            ("ended|web|failed|exit_code", "1"),
            ("wait|web|10", "1"),
            ("wait|web|500", "2"),
            ("wait|web|inf", "1"),
            ("wait_sum|web", "7500"),
            ("wait_count|web", "4"),
            ("run|web|5000", "3"),
            ("run_sum|web", "9000"),
            ("run_count|web", "3"),
            ("reclaimed|web", "2"),
            ("upload_errors|web", "1"),
            ("artifact_bytes|web", "123456"),
        ] {
            f.insert(k.to_string(), v.to_string());
        }
        counters::read(&["web".to_string(), "tauri-linux".to_string()], &f)
    }

    fn gauges() -> Vec<Gauges> {
        vec![
            Gauges {
                target: "web".into(),
                pending: 2,
                running: 1,
                oldest_pending_ms: 1500,
            },
            Gauges {
                target: "tauri-linux".into(),
                pending: 0,
                running: 0,
                oldest_pending_ms: 0,
            },
        ]
    }

    #[test]
    fn the_text_follows_the_exposition_format_and_reads_back() {
        let text = render("demo", &gauges(), &sample_counters());
        let (types, s) = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let web = [("workspace", "demo"), ("target", "web")];
        let tauri = [("workspace", "demo"), ("target", "tauri-linux")];
        assert_eq!(types["builder_pending_jobs"], "gauge");
        assert_eq!(types["builder_jobs_ended_total"], "counter");
        assert_eq!(types["builder_queue_wait_seconds"], "histogram");
        assert_eq!(value(&s, "builder_pending_jobs", &web), Some(2.0));
        assert_eq!(value(&s, "builder_pending_jobs", &tauri), Some(0.0));
        assert_eq!(value(&s, "builder_running_jobs", &web), Some(1.0));
        assert_eq!(
            value(&s, "builder_oldest_pending_age_seconds", &web),
            Some(1.5)
        );
        let ended = |t: &str, state: &str, reason: &str| {
            value(
                &s,
                "builder_jobs_ended_total",
                &[
                    ("workspace", "demo"),
                    ("target", t),
                    ("state", state),
                    ("reason", reason),
                ],
            )
        };
        assert_eq!(ended("web", "succeeded", "none"), Some(4.0));
        assert_eq!(ended("web", "failed", "exit_code"), Some(1.0));
        // Every pair a build can end with is there from the start, at 0.
        assert_eq!(ended("tauri-linux", "error", "worker_lost"), Some(0.0));
        assert_eq!(ended("web", "expired", "timeout"), Some(0.0));
        // Pairs that cannot happen are not.
        assert_eq!(ended("web", "succeeded", "exit_code"), None);

        let bucket = |le: &str| {
            value(
                &s,
                "builder_queue_wait_seconds_bucket",
                &[("workspace", "demo"), ("target", "web"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.01"), Some(1.0));
        assert_eq!(bucket("0.25"), Some(1.0));
        assert_eq!(bucket("0.5"), Some(3.0), "buckets are cumulative");
        assert_eq!(bucket("3600"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(4.0));
        assert_eq!(value(&s, "builder_queue_wait_seconds_sum", &web), Some(7.5));
        assert_eq!(
            value(&s, "builder_queue_wait_seconds_count", &web),
            Some(4.0)
        );
        assert_eq!(
            value(&s, "builder_build_duration_seconds_count", &web),
            Some(3.0)
        );
        assert_eq!(
            value(&s, "builder_build_duration_seconds_count", &tauri),
            Some(0.0)
        );
        assert_eq!(value(&s, "builder_reclaimed_jobs_total", &web), Some(2.0));
        assert_eq!(value(&s, "builder_upload_errors_total", &web), Some(1.0));
        assert_eq!(
            value(&s, "builder_artifact_bytes_total", &web),
            Some(123456.0)
        );
        // Buckets never decrease, and +Inf equals _count, for every histogram series.
        for h in [
            "builder_queue_wait_seconds",
            "builder_build_duration_seconds",
        ] {
            for t in ["web", "tauri-linux"] {
                let mut last = 0.0;
                for b in s
                    .iter()
                    .filter(|x| x.name == format!("{h}_bucket") && x.labels["target"] == t)
                {
                    assert!(b.value >= last, "{h} {t} decreases at {:?}", b.labels);
                    last = b.value;
                }
                let count = value(
                    &s,
                    &format!("{h}_count"),
                    &[("workspace", "demo"), ("target", t)],
                );
                assert_eq!(Some(last), count, "{h} {t}");
            }
        }
    }

    #[test]
    fn the_reader_catches_what_the_format_forbids() {
        // The test's reader is only as good as what it refuses.
        assert!(parse("# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n").is_err());
        assert!(parse("# HELP a x\n# TYPE a gauge\na{b=\"c\\q\"} 1\n").is_err());
        assert!(parse("a 1\n").is_err(), "no TYPE");
        assert!(parse("# HELP a_total x\n# TYPE a_total counter\na_total one\n").is_err());
        assert!(
            parse("# HELP a x\n# TYPE a counter\na 1\n").is_err(),
            "no _total"
        );
        assert!(
            parse("# HELP a x\n# TYPE a gauge\na 1").is_err(),
            "no newline at the end"
        );
        let (_, s) = parse("# HELP a x\n# TYPE a gauge\na{b=\"q\\\"\\\\\\n\",c=\"\"} 2\n").unwrap();
        assert_eq!(s[0].labels["b"], "q\"\\\n");
        assert_eq!(s[0].value, 2.0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let text = render_pending("we\"ird", &[("t".into(), 1)]);
        let (_, s) = parse(&text).unwrap();
        assert_eq!(s[0].labels["workspace"], "we\"ird");
    }
}
