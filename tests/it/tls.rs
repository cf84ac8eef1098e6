//! The certificate Traefik serves chains to the local CA the user trusts, and covers the names.

use crate::common;

use common::*;
use std::process::Command;

fn openssl(args: &[&str]) -> String {
    let out = run(Command::new("openssl").args(args));
    assert!(
        out.status.success(),
        "openssl {args:?} (apt-get install openssl): {}",
        text(&out).1
    );
    text(&out).0
}

#[test]
fn the_certificate_chains_to_the_ca_and_covers_localhost_and_the_domain() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = run(Command::new(bin()).arg("--home").arg(&home).arg("init"));
    assert!(out.status.success(), "{}", text(&out).1);
    let tls = home.join("config/tls");
    let (ca, leaf) = (tls.join("ca.crt"), tls.join("tls.crt"));
    let verified = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    let details = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "DNS:factory.dev.appgear.local",
    ] {
        assert!(details.contains(name), "{name} missing:\n{details}");
    }

    // A new domain: a new certificate from the same CA, so the user's trust still holds.
    let ca_before = std::fs::read(&ca).unwrap();
    let set = run(Command::new(bin()).arg("--home").arg(&home).args([
        "config",
        "set",
        "FACTORY_DOMAIN",
        "dev.example.test",
    ]));
    assert!(set.status.success());
    assert!(
        run(Command::new(bin()).arg("--home").arg(&home).arg("init"))
            .status
            .success()
    );
    assert_eq!(std::fs::read(&ca).unwrap(), ca_before);
    let verified = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    assert!(
        openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"])
            .contains("DNS:dev.example.test")
    );
}
