//! The local certificate authority and the TLS certificate Traefik serves.
//!
//! The CA is created once and kept: a user trusts it once in their browser or system store. The
//! leaf is re-issued when the names it must cover change or when it nears expiry, always from the
//! same CA, so trust survives a change of domain.

use crate::core::error::{Context, Error, Kind, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::Path;
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const LEAF_CERT: &str = "tls.crt";
pub const LEAF_KEY: &str = "tls.key";
/// Records which names the leaf covers and when it expires, so we know when to re-issue it.
const LEAF_INFO: &str = "tls.info";
/// Browsers on macOS refuse server certificates valid for more than 825 days.
const LEAF_DAYS: i64 = 825;
const RENEW_BEFORE_DAYS: i64 = 30;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Kept,
    Issued,
}

/// Make sure `dir` holds a CA and a leaf covering `names`; returns whether the leaf was (re)issued.
pub fn ensure(dir: &Path, names: &[String]) -> Result<Outcome> {
    std::fs::create_dir_all(dir).or_err(Kind::NotReady, || {
        format!("cannot create {}", dir.display())
    })?;
    let (ca_params, ca_key) = ensure_ca(dir)?;
    let want = leaf_info(names, None);
    let info = std::fs::read_to_string(dir.join(LEAF_INFO)).unwrap_or_default();
    if dir.join(LEAF_CERT).exists() && dir.join(LEAF_KEY).exists() && leaf_still_good(&info, &want)
    {
        return Ok(Outcome::Kept);
    }
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName).map_err(tls_err),
        })
        .collect::<Result<_>>()?;
    params.distinguished_name = dn(names.first().map(String::as_str).unwrap_or("localhost"));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(LEAF_DAYS);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.signed_by(&key, &issuer).map_err(tls_err)?;
    write_secret(&dir.join(LEAF_KEY), &key.serialize_pem())?;
    write(&dir.join(LEAF_CERT), &cert.pem())?;
    write(
        &dir.join(LEAF_INFO),
        &leaf_info(names, Some(params.not_after)),
    )?;
    Ok(Outcome::Issued)
}

/// Load the CA, or create it. Its parameters are rebuilt the same way every time, so a leaf signed
/// later names the same issuer and key as the CA certificate the user trusted.
fn ensure_ca(dir: &Path) -> Result<(CertificateParams, KeyPair)> {
    let key_path = dir.join(CA_KEY);
    let cert_path = dir.join(CA_CERT);
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = dn("appgear local development CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if key_path.exists() && cert_path.exists() {
        let pem = std::fs::read_to_string(&key_path).or_err(Kind::NotReady, || {
            format!("cannot read {}", key_path.display())
        })?;
        let key = KeyPair::from_pem(&pem).map_err(|e| {
            Error::bad_input(format!("{} is not a private key: {e}", key_path.display()))
                .hint(format!("move {} away and run `appgear init` to create a new CA (trust it again afterwards)", dir.display()))
        })?;
        return Ok((params, key));
    }
    let key = KeyPair::generate().map_err(tls_err)?;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key).map_err(tls_err)?;
    write_secret(&key_path, &key.serialize_pem())?;
    write(&cert_path, &cert.pem())?;
    // A new CA invalidates any old leaf.
    let _ = std::fs::remove_file(dir.join(LEAF_INFO));
    Ok((params, key))
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "appgear");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn leaf_info(names: &[String], not_after: Option<OffsetDateTime>) -> String {
    let mut s = format!("names={}\n", names.join(","));
    if let Some(t) = not_after {
        s.push_str(&format!("not_after={}\n", t.unix_timestamp()));
    }
    s
}

fn leaf_still_good(info: &str, want: &str) -> bool {
    let names_line = want.lines().next().unwrap_or_default();
    let same_names = info.lines().any(|l| l == names_line);
    let not_after = info
        .lines()
        .find_map(|l| l.strip_prefix("not_after="))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let fresh = not_after
        > (OffsetDateTime::now_utc() + Duration::days(RENEW_BEFORE_DAYS)).unix_timestamp();
    same_names && fresh
}

fn tls_err(e: rcgen::Error) -> Error {
    Error::internal(format!("cannot create the TLS certificate: {e}"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).or_err(Kind::NotReady, || {
        format!("cannot write {}", path.display())
    })
}

/// Private keys are readable by their owner only.
fn write_secret(path: &Path, text: &str) -> Result<()> {
    crate::core::files::write_private(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_kept_and_leaf_reissued_only_when_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "factory.dev.appgear.local".to_string(),
        ];
        assert_eq!(ensure(dir.path(), &names).unwrap(), Outcome::Issued);
        let ca = std::fs::read(dir.path().join(CA_CERT)).unwrap();
        let leaf = std::fs::read(dir.path().join(LEAF_CERT)).unwrap();
        assert_eq!(ensure(dir.path(), &names).unwrap(), Outcome::Kept);
        assert_eq!(std::fs::read(dir.path().join(LEAF_CERT)).unwrap(), leaf);
        let other = vec!["localhost".to_string(), "other.test".to_string()];
        assert_eq!(ensure(dir.path(), &other).unwrap(), Outcome::Issued);
        assert_eq!(
            std::fs::read(dir.path().join(CA_CERT)).unwrap(),
            ca,
            "the CA the user trusted is kept"
        );
        assert_ne!(std::fs::read(dir.path().join(LEAF_CERT)).unwrap(), leaf);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
