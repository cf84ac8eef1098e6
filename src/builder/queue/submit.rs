//! Submitting a build: the hash, the stream entry and the idempotency key in one script, so a
//! retried request (N8n retries up to 5 times) gives the same build and never a second one.

use crate::builder::clock::now_ms;
use crate::builder::config::is_env_name;
use crate::builder::glob::is_safe_relative;
use crate::builder::id::BuildId;
use crate::builder::keys::sources_prefix;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::job::{status_fields, BuildSpec, Job, Source};
use crate::builder::queue::names::GROUP;
use crate::builder::queue::scripts::SUBMIT;
use crate::builder::queue::Queue;
use crate::builder::state::Status;
use crate::core::digest::sha256_hex;
use crate::core::names::WorkspaceId;

/// The longest Idempotency-Key accepted (Stripe's limit too).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub job: Job,
    /// False when the Idempotency-Key had already given this build.
    pub created: bool,
}

/// Whether an Idempotency-Key is acceptable: 1 to 255 visible ASCII characters.
pub fn valid_idempotency_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic())
}

/// Most variables a request may set for its recipe, and the most bytes of names and values.
pub const MAX_ENV: usize = 64;
pub const MAX_ENV_BYTES: usize = 16 * 1024;

/// What the queue refuses to store: a source outside the workspace's sources, variables a
/// process cannot carry, and oversized requests.
fn check_spec(spec: &BuildSpec, workspace: &WorkspaceId) -> Result<(), QueueError> {
    match &spec.source {
        Some(Source::Object { s3_key, sha256 }) => {
            let prefix = sources_prefix(workspace);
            if !s3_key.starts_with(&prefix) || !is_safe_relative(s3_key) {
                return Err(QueueError::BadRequest(format!(
                    "source.s3_key must be an object under {prefix}"
                )));
            }
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(QueueError::BadRequest(
                    "source.sha256 must be 64 hex digits".into(),
                ));
            }
        }
        Some(Source::Git { git_url, git_ref })
            if git_url.is_empty() || git_ref.is_empty() || git_ref.starts_with('-') =>
        {
            return Err(QueueError::BadRequest(
                "source.git_url and source.ref must be set (a ref cannot start with '-')".into(),
            ));
        }
        Some(Source::Git { .. }) | None => {}
    }
    if spec.env.len() > MAX_ENV {
        return Err(QueueError::BadRequest(format!(
            "at most {MAX_ENV} env variables per build"
        )));
    }
    let mut bytes = 0;
    for (k, v) in &spec.env {
        if !is_env_name(k) {
            return Err(QueueError::BadRequest(format!(
                "env {k:?} is not a variable name (letters, digits, '_')"
            )));
        }
        if v.contains('\0') {
            return Err(QueueError::BadRequest(format!("env {k} holds a NUL byte")));
        }
        bytes += k.len() + v.len();
    }
    if bytes > MAX_ENV_BYTES {
        return Err(QueueError::BadRequest(format!(
            "the env variables of a build are at most {MAX_ENV_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Queue {
    pub async fn submit(
        &self,
        spec: BuildSpec,
        idempotency_key: Option<&str>,
    ) -> Result<Submitted, QueueError> {
        if !self.targets.contains(&spec.target) {
            return Err(QueueError::UnknownTarget(
                spec.target.clone(),
                self.targets.clone(),
            ));
        }
        check_spec(&spec, &self.workspace)?;
        let spec_json =
            serde_json::to_string(&spec).map_err(|e| QueueError::Corrupt(format!("spec: {e}")))?;
        let spec_sha = sha256_hex(spec_json.as_bytes());
        let id = BuildId::generate().map_err(|e| QueueError::Redis(e.message))?;
        let now = now_ms();
        let key = match idempotency_key {
            Some(k) if !valid_idempotency_key(k) => {
                return Err(QueueError::BadRequest(
                    "the Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                ))
            }
            k => k,
        };
        let script = redis::Script::new(SUBMIT);
        let mut inv = script.prepare_invoke();
        inv.key(self.names.job(&id))
            .key(self.names.stream(&spec.target))
            .key(self.names.idempotency(key.unwrap_or("")))
            .key(self.names.index())
            .arg(match key {
                Some(_) => self.settings.idempotency_ttl.as_secs().max(1).to_string(),
                None => String::new(),
            })
            .arg(id.as_str())
            .arg(&spec_sha)
            .arg(now)
            .arg(GROUP);
        let mut fields = status_fields(&Status::new());
        fields.extend([
            ("workspace", self.workspace.as_str().to_string()),
            ("spec", spec_json),
            ("spec_sha", spec_sha.clone()),
            ("rev", "1".to_string()),
            ("submitted_ms", now.to_string()),
            ("queued_ms", now.to_string()),
        ]);
        for (k, v) in fields {
            inv.arg(k).arg(v);
        }
        let mut c = self.conn().await?;
        let (created, value): (i64, String) = self.checked(inv.invoke_async(&mut c).await).await?;
        if created == 1 {
            let job = self.get(&id).await?;
            return Ok(Submitted { job, created: true });
        }
        // "<id> <spec sha>" of the earlier submit.
        let (seen_id, seen_sha) = value.split_once(' ').unwrap_or((value.as_str(), ""));
        let seen_id = BuildId::parse(seen_id)
            .map_err(|_| QueueError::Corrupt(format!("idempotency record {value:?}")))?;
        if seen_sha != spec_sha {
            return Err(QueueError::IdempotencyConflict(seen_id));
        }
        let job = self.get(&seen_id).await?;
        Ok(Submitted {
            job,
            created: false,
        })
    }
}
