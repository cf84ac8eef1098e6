//! The local certificate authority and the TLS certificate Traefik serves.
//!
//! The CA is created once and kept: a user trusts it once in their browser or system store. The
//! leaf is re-issued when the names it must cover change or when it nears expiry, always from the
//! same CA, so trust survives a change of domain.
//!
//! Every file is read and written through the folder's descriptor, never through a link: a link
//! in `config/tls` is refused, not followed (the CA key is a secret; a link could expose it or
//! make appgear overwrite something else).

use crate::core::error::{Error, Result};
use crate::core::files::{self, Dir};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
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
pub fn ensure(dir: &Dir, names: &[String]) -> Result<Outcome> {
    for name in [CA_CERT, CA_KEY, LEAF_CERT, LEAF_KEY, LEAF_INFO] {
        dir.check_file(name)
            .map_err(|e| files::not_writable(&dir.join(name), e))?;
    }
    let (ca_params, ca_key) = ensure_ca(dir)?;
    let want = leaf_info(names, None);
    let info = read(dir, LEAF_INFO)?.unwrap_or_default();
    if exists(dir, LEAF_CERT)? && exists(dir, LEAF_KEY)? && leaf_still_good(&info, &want) {
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
    write(dir, LEAF_KEY, &key.serialize_pem(), SECRET)?;
    write(dir, LEAF_CERT, &cert.pem(), PUBLIC)?;
    write(
        dir,
        LEAF_INFO,
        &leaf_info(names, Some(params.not_after)),
        PUBLIC,
    )?;
    Ok(Outcome::Issued)
}

/// Load the CA, or create it. Its parameters are rebuilt the same way every time, so a leaf signed
/// later names the same issuer and key as the CA certificate the user trusted.
fn ensure_ca(dir: &Dir) -> Result<(CertificateParams, KeyPair)> {
    let key_path = dir.join(CA_KEY);
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = dn("appgear local development CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if exists(dir, CA_CERT)? {
        if let Some(pem) = read(dir, CA_KEY)? {
            let key = KeyPair::from_pem(&pem).map_err(|e| {
                Error::bad_input(format!("{} is not a private key: {e}", key_path.display()))
                    .hint(format!("move {} away and run `appgear init` to create a new CA (trust it again afterwards)", dir.path().display()))
            })?;
            return Ok((params, key));
        }
    }
    let key = KeyPair::generate().map_err(tls_err)?;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key).map_err(tls_err)?;
    write(dir, CA_KEY, &key.serialize_pem(), SECRET)?;
    write(dir, CA_CERT, &cert.pem(), PUBLIC)?;
    // A new CA invalidates any old leaf.
    dir.remove_file(LEAF_INFO)
        .map_err(|e| files::not_writable(&dir.join(LEAF_INFO), e))?;
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

/// Private keys are readable by their owner only, from the moment they exist.
const SECRET: Option<u32> = Some(0o600);
const PUBLIC: Option<u32> = Some(0o644);

fn write(dir: &Dir, name: &str, text: &str, mode: Option<u32>) -> Result<()> {
    dir.write_atomic(name, text.as_bytes(), mode)
        .map_err(|e| files::not_writable(&dir.join(name), e))
}

/// A file's text, `None` when absent; anything but a readable regular file is an error.
fn read(dir: &Dir, name: &str) -> Result<Option<String>> {
    match dir.read_text(name) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(files::refusal(&e).unwrap_or_else(|| {
            Error::not_ready(format!("cannot read {}: {e}", dir.join(name).display()))
                .hint("check its permissions")
        })),
    }
}

fn exists(dir: &Dir, name: &str) -> Result<bool> {
    dir.entry(name)
        .map(|e| e.is_some())
        .map_err(|e| files::not_writable(&dir.join(name), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_kept_and_leaf_reissued_only_when_names_change() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = Dir::open(tmp.path()).unwrap();
        let dir = tmp.path();
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "factory.dev.appgear.local".to_string(),
        ];
        assert_eq!(ensure(&folder, &names).unwrap(), Outcome::Issued);
        let ca = std::fs::read(dir.join(CA_CERT)).unwrap();
        let leaf = std::fs::read(dir.join(LEAF_CERT)).unwrap();
        assert_eq!(ensure(&folder, &names).unwrap(), Outcome::Kept);
        assert_eq!(std::fs::read(dir.join(LEAF_CERT)).unwrap(), leaf);
        let other = vec!["localhost".to_string(), "other.test".to_string()];
        assert_eq!(ensure(&folder, &other).unwrap(), Outcome::Issued);
        assert_eq!(
            std::fs::read(dir.join(CA_CERT)).unwrap(),
            ca,
            "the CA the user trusted is kept"
        );
        assert_ne!(std::fs::read(dir.join(LEAF_CERT)).unwrap(), leaf);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(CA_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_link_in_the_tls_folder_is_refused_and_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = Dir::open(tmp.path()).unwrap();
        let names = vec!["localhost".to_string()];
        ensure(&folder, &names).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        std::fs::remove_file(tmp.path().join(LEAF_KEY)).unwrap();
        std::os::unix::fs::symlink(&outside, tmp.path().join(LEAF_KEY)).unwrap();
        let err = ensure(&folder, &["other.test".to_string()]).unwrap_err();
        assert_eq!(err.kind, crate::core::error::Kind::BadInput);
        assert!(err.message.contains(LEAF_KEY), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
    }
}
