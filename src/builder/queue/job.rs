//! A build as the queue stores it: the Redis hash `job:<id>` read into a typed record, and the
//! status written back as fields. Pure.

use crate::builder::id::BuildId;
use crate::builder::state::{Phase, Reason, State, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Where a build's source comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Source {
    /// An object the caller uploaded, checked against its SHA-256 before the recipe runs.
    Object { s3_key: String, sha256: String },
    Git {
        git_url: String,
        #[serde(rename = "ref")]
        git_ref: String,
    },
}

/// What the caller asked for. Stored as JSON; its SHA-256 tells a repeated submit (same
/// Idempotency-Key, same request) from a conflicting one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A build record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: BuildId,
    pub target: String,
    pub spec: BuildSpec,
    #[serde(skip)]
    pub spec_sha: String,
    #[serde(flatten, with = "status_json")]
    pub status: Status,
    /// Bumped by every write: the compare-and-set compares it.
    #[serde(skip)]
    pub rev: u64,
    /// The stream entry of the current attempt.
    #[serde(skip)]
    pub entry: String,
    /// The worker (consumer name) running the current attempt.
    pub worker: Option<String>,
    pub submitted_ms: u64,
    /// When the build last entered the queue (submit or re-queue): the queue TTL counts from here.
    pub queued_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub exit_code: Option<i64>,
}

mod status_json {
    use crate::builder::state::Status;
    use serde::ser::SerializeMap;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("state", &s.state)?;
        m.serialize_entry("phase", &s.phase)?;
        m.serialize_entry("reason", &s.reason)?;
        m.serialize_entry("attempt", &s.attempt)?;
        m.serialize_entry("requeued_by", &s.requeued_by)?;
        m.serialize_entry("cancel_requested", &s.cancel_requested)?;
        m.end()
    }
}

fn opt_u64(v: Option<&String>) -> Option<u64> {
    v.filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

/// The fields that hold a status, as written by every transition (empty string = none).
pub fn status_fields(s: &Status) -> Vec<(&'static str, String)> {
    vec![
        ("state", s.state.as_str().to_string()),
        ("phase", s.phase.map_or("", Phase::as_str).to_string()),
        ("reason", s.reason.map_or("", Reason::as_str).to_string()),
        ("attempt", s.attempt.to_string()),
        ("counted", s.counted.to_string()),
        (
            "requeued_by",
            s.requeued_by.map_or("", Reason::as_str).to_string(),
        ),
        (
            "cancel",
            if s.cancel_requested { "1" } else { "0" }.to_string(),
        ),
    ]
}

impl Job {
    /// Read a hash (`HGETALL`). `None` when the hash is empty (no such build).
    pub fn from_fields(id: &BuildId, f: &HashMap<String, String>) -> Result<Option<Job>, String> {
        if f.is_empty() {
            return Ok(None);
        }
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        let need = |k: &str| -> Result<&str, String> {
            f.get(k)
                .map(String::as_str)
                .ok_or_else(|| format!("build {id} has no field {k}"))
        };
        let bad = |k: &str| format!("build {id} has a bad {k}: {:?}", get(k));
        let reason = |k: &str| -> Result<Option<Reason>, String> {
            match get(k) {
                "" => Ok(None),
                r => Reason::parse(r).map(Some).ok_or_else(|| bad(k)),
            }
        };
        let status = Status {
            state: State::parse(need("state")?).ok_or_else(|| bad("state"))?,
            phase: match get("phase") {
                "" => None,
                p => Some(Phase::parse(p).ok_or_else(|| bad("phase"))?),
            },
            reason: reason("reason")?,
            attempt: need("attempt")?.parse().map_err(|_| bad("attempt"))?,
            counted: get("counted").parse().unwrap_or(0),
            requeued_by: reason("requeued_by")?,
            cancel_requested: get("cancel") == "1",
        };
        let spec: BuildSpec =
            serde_json::from_str(need("spec")?).map_err(|e| format!("build {id}: spec: {e}"))?;
        Ok(Some(Job {
            id: id.clone(),
            target: spec.target.clone(),
            spec,
            spec_sha: get("spec_sha").to_string(),
            status,
            rev: need("rev")?.parse().map_err(|_| bad("rev"))?,
            entry: get("entry").to_string(),
            worker: Some(get("worker").to_string()).filter(|w| !w.is_empty()),
            submitted_ms: opt_u64(f.get("submitted_ms")).unwrap_or(0),
            queued_ms: opt_u64(f.get("queued_ms")).unwrap_or(0),
            started_ms: opt_u64(f.get("started_ms")),
            finished_ms: opt_u64(f.get("finished_ms")),
            exit_code: f
                .get("exit_code")
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse().ok()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::state::Event;

    fn fields(status: &Status) -> HashMap<String, String> {
        let mut f: HashMap<String, String> = status_fields(status)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        f.insert("spec".into(), r#"{"target":"web"}"#.into());
        f.insert("rev".into(), "4".into());
        f.insert("submitted_ms".into(), "10".into());
        f.insert("queued_ms".into(), "10".into());
        f.insert("exit_code".into(), "".into());
        f
    }

    #[test]
    fn status_round_trips_through_fields() {
        let id = BuildId::parse("b0123456789abcdef01234567").unwrap();
        let s = Status::new()
            .apply(Event::Claim { attempt: 1 })
            .unwrap()
            .apply(Event::Cancel)
            .unwrap();
        let job = Job::from_fields(&id, &fields(&s)).unwrap().unwrap();
        assert_eq!(job.status, s);
        assert_eq!(
            (job.rev, job.target.as_str(), job.exit_code),
            (4, "web", None)
        );
        assert_eq!(Job::from_fields(&id, &HashMap::new()).unwrap(), None);
        let mut broken = fields(&s);
        broken.insert("state".into(), "done".into());
        assert!(Job::from_fields(&id, &broken)
            .unwrap_err()
            .contains("bad state"));
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(
            (v["state"].as_str(), v["phase"].as_str()),
            (Some("running"), Some("preparing"))
        );
    }

    #[test]
    fn specs_refuse_unknown_fields() {
        assert!(serde_json::from_str::<BuildSpec>(r#"{"target":"web","tagret":"x"}"#).is_err());
        let s: BuildSpec = serde_json::from_str(
            r#"{"target":"web","source":{"git_url":"https://x/y.git","ref":"main"}}"#,
        )
        .unwrap();
        assert!(matches!(s.source, Some(Source::Git { .. })));
    }
}
