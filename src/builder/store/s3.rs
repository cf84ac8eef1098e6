//! The object store on S3 (Ceph RGW in the cluster), through object_store's `AmazonS3`.
//!
//! - Path-style requests (`http://rgw/bucket/key`): RGW behind a cluster Service has no
//!   wildcard DNS for virtual-hosted buckets.
//! - A create is `PutMode::Create` (`If-None-Match: *`): a key that exists answers 412, which
//!   is `AlreadyExists`, so nothing is ever overwritten.
//! - A file of `PART` bytes or more goes up in parts, read from disk part by part (an artifact
//!   may be gigabytes). S3 has no conditional create for a multipart upload in the API this
//!   crate speaks, so the key is checked first; keys are attempt-scoped, and the manifest that
//!   commits an attempt is always a small, conditional put.
//! - The SHA-256 the worker computed goes in the user metadata `sha256` (`x-amz-meta-sha256`):
//!   stores do not check checksums, readers do.
//! - A store that does not answer is `Unavailable`, which the upload retries with backoff. The
//!   client's own retries are kept short so that backoff stays the worker's.

use super::{Body, ByteStream, Listed, Meta, ObjectStore, Opened, StoreError};
use crate::core::error::{Error, Result};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as OsPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, ObjectStore as _,
    ObjectStoreExt as _, PutMode, PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
    WriteMultipart,
};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The environment S3 is configured from (rendered into the builder's Deployment and Jobs).
pub const ENDPOINT: &str = "S3_ENDPOINT";
pub const BUCKET: &str = "S3_BUCKET";
/// Optional; RGW ignores it but signatures include it.
pub const REGION: &str = "S3_REGION";
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// A file of `AWS_ACCESS_KEY_ID=…` / `AWS_SECRET_ACCESS_KEY=…` lines, where Vault's agent writes
/// the credentials in the cluster (used when the two variables are not set).
pub const CREDENTIALS_FILE: &str = "S3_CREDENTIALS_FILE";

pub const DEFAULT_REGION: &str = "us-east-1";
/// The part size of a multipart upload; also the size from which a file goes up in parts.
/// S3's minimum part size.
pub const PART: usize = 5 * 1024 * 1024;
/// Parts in flight at once: bounds the memory an upload holds to about this many parts.
const PARTS_IN_FLIGHT: usize = 2;

/// The S3 settings, credentials included. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// `KEY=VALUE` lines (blank lines, `#` comments and a leading `export ` allowed): the value of
/// `key`, if the file sets it.
pub fn credential_in(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .next_back()
        .filter(|v| !v.is_empty())
}

impl S3Settings {
    pub fn new(endpoint: &str, bucket: &str, access_key_id: &str, secret: &str) -> S3Settings {
        S3Settings {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            region: DEFAULT_REGION.to_string(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret.to_string(),
        }
    }

    /// Whether any S3 setting is present: then S3 is what the builder uses, and what is
    /// missing is an error rather than a silent fallback.
    pub fn wanted(env: &dyn Fn(&str) -> Option<String>) -> bool {
        [ENDPOINT, BUCKET]
            .iter()
            .any(|k| env(k).is_some_and(|v| !v.is_empty()))
    }

    /// The settings from the environment (`env`) and, for the credentials, the file it names
    /// (`read`). Pure apart from what the two closures do.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<S3Settings> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let endpoint = get(ENDPOINT).ok_or_else(|| {
            Error::bad_input(format!("{ENDPOINT} is not set but {BUCKET} is"))
                .hint(format!("set {ENDPOINT} to the S3 (Ceph RGW) URL, e.g. http://ceph-rgw.appgear-core.svc.cluster.local"))
        })?;
        if endpoint.contains('@') {
            // Not echoed: the part before '@' is a password.
            return Err(Error::bad_input(format!(
                "{ENDPOINT} holds credentials (user:password@)"
            ))
            .hint("put them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and only http(s)://host:port in S3_ENDPOINT"));
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::bad_input(format!(
                "{ENDPOINT} {endpoint:?} is not an http(s) URL"
            ))
            .hint("e.g. http://127.0.0.1:7480 (credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL)"));
        }
        let bucket = get(BUCKET).ok_or_else(|| {
            Error::bad_input(format!("{BUCKET} is not set but {ENDPOINT} is")).hint(format!(
                "set {BUCKET} to the artifacts bucket, e.g. factory-artifacts"
            ))
        })?;
        if bucket.len() < 3
            || bucket.len() > 63
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(
                Error::bad_input(format!("{BUCKET} {bucket:?} is not an S3 bucket name"))
                    .hint("3 to 63 lowercase letters, digits, '-' or '.', e.g. factory-artifacts"),
            );
        }
        let (key, secret) = match (get(ACCESS_KEY_ID), get(SECRET_ACCESS_KEY)) {
            (Some(k), Some(s)) => (k, s),
            (None, None) => {
                let Some(file) = get(CREDENTIALS_FILE) else {
                    return Err(Error::bad_input("no S3 credentials").hint(format!(
                        "set {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}, or {CREDENTIALS_FILE} to the file Vault writes them to"
                    )));
                };
                let text = read(Path::new(&file)).map_err(|e| {
                    Error::not_ready(format!("cannot read {CREDENTIALS_FILE} {file}: {e}"))
                        .hint("check that Vault's agent wrote the file (pod annotation agent-inject-secret-builder-s3)")
                })?;
                match (
                    credential_in(&text, ACCESS_KEY_ID),
                    credential_in(&text, SECRET_ACCESS_KEY),
                ) {
                    (Some(k), Some(s)) => (k, s),
                    _ => {
                        return Err(Error::bad_input(format!(
                            "{file} does not set both {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}"
                        ))
                        .hint(format!(
                            "write one {ACCESS_KEY_ID}=... and one {SECRET_ACCESS_KEY}=... line"
                        )))
                    }
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::bad_input(format!(
                    "only one of {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY} is set"
                ))
                .hint("set both, or neither and point S3_CREDENTIALS_FILE at a file holding both"))
            }
        };
        let mut s = S3Settings::new(&endpoint, &bucket, &key, &secret);
        if let Some(r) = get(REGION) {
            s.region = r;
        }
        Ok(s)
    }
}

pub struct S3Store {
    inner: AmazonS3,
    endpoint: String,
    bucket: String,
    /// Scrubbed from every message, in case a lower layer ever echoes it.
    secret: String,
}

impl S3Store {
    pub fn new(s: &S3Settings) -> Result<S3Store> {
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        };
        let client = ClientOptions::new()
            .with_allow_http(s.endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(300));
        let inner = AmazonS3Builder::new()
            .with_endpoint(&s.endpoint)
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| {
                Error::bad_input(format!(
                    "S3 settings for {} (bucket {}) are not usable: {}",
                    s.endpoint,
                    s.bucket,
                    scrub(&e.to_string(), &s.secret_access_key)
                ))
                .hint("check S3_ENDPOINT, S3_BUCKET and S3_REGION")
            })?;
        Ok(S3Store {
            inner,
            endpoint: s.endpoint.clone(),
            bucket: s.bucket.clone(),
            secret: s.secret_access_key.clone(),
        })
    }

    pub fn describe(&self) -> String {
        format!("s3 {}/{}", self.endpoint, self.bucket)
    }

    fn path(&self, key: &str) -> std::result::Result<OsPath, StoreError> {
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return Err(StoreError::BadKey(key.to_string()));
        }
        OsPath::parse(key).map_err(|_| StoreError::BadKey(key.to_string()))
    }

    fn error(&self, key: &str, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound(key.to_string()),
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => {
                StoreError::AlreadyExists(key.to_string())
            }
            object_store::Error::InvalidPath { .. } => StoreError::BadKey(key.to_string()),
            other => {
                let text = scrub(&other.to_string(), &self.secret);
                StoreError::Unavailable(match s3_code(&text) {
                    Some("NoSuchBucket") => {
                        format!("{}: the bucket does not exist", self.describe())
                    }
                    Some(code) => format!("{} {key}: S3 answered {code}", self.describe()),
                    None => format!("{} {key}: {text}", self.describe()),
                })
            }
        }
    }

    async fn put_small(
        &self,
        key: &str,
        path: &OsPath,
        bytes: Vec<u8>,
        attributes: Attributes,
    ) -> std::result::Result<(), StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes,
            ..Default::default()
        };
        self.inner
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
            .map(|_| ())
            .map_err(|e| self.error(key, e))
    }

    /// A file in parts, read `PART` bytes at a time. An upload that fails is aborted, so no
    /// parts are left behind in the bucket.
    async fn put_parts(
        &self,
        key: &str,
        path: &OsPath,
        file: &Path,
        attributes: Attributes,
    ) -> std::result::Result<(), StoreError> {
        match self.inner.head(path).await {
            Ok(_) => return Err(StoreError::AlreadyExists(key.to_string())),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(key, e)),
        }
        let mut f = tokio::fs::File::open(file).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot read {} for {key}: {e}", file.display()))
        })?;
        let opts = PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let upload = self
            .inner
            .put_multipart_opts(path, opts)
            .await
            .map_err(|e| self.error(key, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1024 * 1024];
        let sent: std::result::Result<(), StoreError> = async {
            loop {
                let n = f.read(&mut buf).await.map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot read {} for {key}: {e}",
                        file.display()
                    ))
                })?;
                if n == 0 {
                    return Ok(());
                }
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.error(key, e))?;
                w.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => w.finish().await.map(|_| ()).map_err(|e| self.error(key, e)),
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }
}

/// The `<Code>` of an S3 error answer quoted in `text`, e.g. `NoSuchBucket`, `AccessDenied`,
/// `SignatureDoesNotMatch`: the one word worth showing out of the XML.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len]).filter(|c| !c.is_empty())
}

/// `text` without `secret` in it.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    text.replace(secret, "[redacted]")
}

fn attributes(meta: &Meta) -> Attributes {
    let mut a = Attributes::new();
    if !meta.content_type.is_empty() {
        a.insert(Attribute::ContentType, meta.content_type.clone().into());
    }
    if !meta.sha256.is_empty() {
        a.insert(
            Attribute::Metadata("sha256".into()),
            meta.sha256.clone().into(),
        );
    }
    a
}

fn meta_of(a: &Attributes) -> Meta {
    let get = |k: &Attribute| a.get(k).map(|v| v.as_ref().to_string()).unwrap_or_default();
    Meta {
        content_type: get(&Attribute::ContentType),
        sha256: get(&Attribute::Metadata("sha256".into())),
    }
}

impl ObjectStore for S3Store {
    async fn put_new(
        &self,
        key: &str,
        body: Body,
        meta: Meta,
    ) -> std::result::Result<(), StoreError> {
        let path = self.path(key)?;
        let attrs = attributes(&meta);
        match body {
            Body::Bytes(b) => self.put_small(key, &path, b, attrs).await,
            Body::File(p) => {
                let size = tokio::fs::metadata(&p)
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!(
                            "cannot read {} for {key}: {e}",
                            p.display()
                        ))
                    })?
                    .len();
                if size >= PART as u64 {
                    self.put_parts(key, &path, &p, attrs).await
                } else {
                    let bytes = super::body_bytes(key, Body::File(p)).await?;
                    self.put_small(key, &path, bytes, attrs).await
                }
            }
        }
    }

    async fn get(&self, key: &str) -> std::result::Result<(Vec<u8>, Meta), StoreError> {
        let path = self.path(key)?;
        let got = self
            .inner
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(|e| self.error(key, e))?;
        let meta = meta_of(&got.attributes);
        let bytes = got.bytes().await.map_err(|e| self.error(key, e))?;
        Ok((bytes.to_vec(), meta))
    }

    async fn list(&self, prefix: &str) -> std::result::Result<Vec<Listed>, StoreError> {
        // object_store lists by whole path segments; the trait's prefix is any string, so list
        // the folder it ends in and keep the keys that start with it.
        let folder = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let folder = if folder.is_empty() {
            None
        } else {
            Some(self.path(folder)?)
        };
        let mut out: Vec<Listed> = self
            .inner
            .list(folder.as_ref())
            .map_err(|e| self.error(prefix, e))
            .try_filter_map(|m| {
                let key = m.location.to_string();
                std::future::ready(Ok(key
                    .starts_with(prefix)
                    .then_some(Listed { key, size: m.size })))
            })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn ready(&self) -> std::result::Result<(), StoreError> {
        // Listing a prefix that holds nothing: answers only when the endpoint, the
        // credentials and the bucket are all right.
        let probe = OsPath::from("appgear-readyz");
        self.inner
            .list_with_delimiter(Some(&probe))
            .await
            .map(|_| ())
            .map_err(|e| match self.error("(bucket)", e) {
                StoreError::NotFound(_) => StoreError::Unavailable(format!(
                    "{}: the bucket does not exist",
                    self.describe()
                )),
                other => other,
            })
    }

    async fn meta(&self, key: &str) -> std::result::Result<Meta, StoreError> {
        let path = self.path(key)?;
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        self.inner
            .get_opts(&path, opts)
            .await
            .map(|got| meta_of(&got.attributes))
            .map_err(|e| self.error(key, e))
    }

    async fn open(&self, key: &str) -> std::result::Result<Opened, StoreError> {
        let path = self.path(key)?;
        let got = self
            .inner
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(|e| self.error(key, e))?;
        let meta = meta_of(&got.attributes);
        let size = got.meta.size;
        let (k, d, secret) = (key.to_string(), self.describe(), self.secret.clone());
        let body: ByteStream = Box::pin(got.into_stream().map(move |r| {
            r.map_err(|e| {
                StoreError::Unavailable(format!("{d} {k}: {}", scrub(&e.to_string(), &secret)))
            })
        }));
        Ok(Opened { size, meta, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn no_file(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn settings_from_the_environment() {
        let env = env_of(&[
            (ENDPOINT, "http://127.0.0.1:7480/"),
            (BUCKET, "factory-artifacts"),
            (ACCESS_KEY_ID, "AK"),
            (SECRET_ACCESS_KEY, "very-secret"),
        ]);
        assert!(S3Settings::wanted(&env));
        let s = S3Settings::from_env(&env, &no_file).unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:7480");
        assert_eq!(s.region, DEFAULT_REGION);
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!S3Settings::wanted(&env_of(&[])));
    }

    #[test]
    fn credentials_from_the_vault_file() {
        let env = env_of(&[
            (ENDPOINT, "http://rgw"),
            (BUCKET, "factory-artifacts"),
            (CREDENTIALS_FILE, "/vault/secrets/builder-s3"),
        ]);
        let read = |p: &Path| {
            assert_eq!(p, Path::new("/vault/secrets/builder-s3"));
            Ok(
                "# from Vault\nexport AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n"
                    .into(),
            )
        };
        let s = S3Settings::from_env(&env, &read).unwrap();
        assert_eq!(s.access_key_id, "AK");
        assert_eq!(s.secret_access_key, "s3cr3t");
        let half = |_: &Path| Ok("AWS_ACCESS_KEY_ID=AK\n".to_string());
        let e = S3Settings::from_env(&env, &half).unwrap_err();
        assert!(e.message.contains("does not set both"), "{}", e.message);
    }

    #[test]
    fn refusals_name_the_setting() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![(BUCKET, "factory-artifacts")], ENDPOINT),
            (vec![(ENDPOINT, "http://rgw")], BUCKET),
            (
                vec![(ENDPOINT, "rgw:7480"), (BUCKET, "b-1")],
                "not an http(s) URL",
            ),
            (
                vec![(ENDPOINT, "http://AK:SK@rgw"), (BUCKET, "b-1")],
                "holds credentials",
            ),
            (
                vec![(ENDPOINT, "http://rgw"), (BUCKET, "Bad_Bucket")],
                "bucket name",
            ),
            (
                vec![(ENDPOINT, "http://rgw"), (BUCKET, "b-1")],
                "no S3 credentials",
            ),
            (
                vec![
                    (ENDPOINT, "http://rgw"),
                    (BUCKET, "b-1"),
                    (ACCESS_KEY_ID, "AK"),
                ],
                "only one of",
            ),
        ];
        for (pairs, want) in cases {
            let e = S3Settings::from_env(&env_of(&pairs), &no_file).unwrap_err();
            assert!(e.message.contains(want), "{pairs:?}: {}", e.message);
            assert!(!e.message.contains("SK@"), "{}", e.message);
        }
    }

    #[test]
    fn s3_error_codes_are_picked_out() {
        let t = "404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message></Message></Error>";
        assert_eq!(s3_code(t), Some("NoSuchBucket"));
        assert_eq!(s3_code("connection refused"), None);
        assert_eq!(s3_code("<Code></Code>"), None);
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("sig for s3cr3t failed", "s3cr3t"),
            "sig for [redacted] failed"
        );
        assert_eq!(scrub("x", ""), "x");
    }

    #[test]
    fn metadata_round_trips_through_attributes() {
        let m = Meta {
            content_type: "application/zip".into(),
            sha256: "ab".repeat(32),
        };
        assert_eq!(meta_of(&attributes(&m)), m);
    }
}
