//! The suite image's root filesystem: the running appgear binary, the shared libraries it links
//! and their loader, a non-root user, `/tmp`, and the host's CA bundle, written as one tar.
//!
//! Which libraries: the binary's ELF header names its loader (`PT_INTERP`, for example
//! `/lib64/ld-linux-x86-64.so.2`); a binary without one is static and needs nothing else. For a
//! dynamic binary, `ldd` (glibc's and musl's both print `name => path`) says which file the
//! loader resolves for each needed library, through the same search path and cache the loader
//! uses, including libraries needed by libraries. Each is stored at the path `ldd` printed, so the
//! same loader in the image finds it there. Where `ldd` is missing or fails, the shared objects
//! this very process has mapped (`/proc/self/maps`) are taken instead: the same set, as this
//! binary is the one running, but under their real paths. `LD_LIBRARY_PATH` names every folder
//! used, so a library that was found through the host's loader cache is found without it.
//! glibc's NSS modules for `files` and `dns` (separate files before glibc 2.34, loaded on the
//! first host-name lookup rather than at start) are added when they sit beside libc.

use crate::core::digest;
use crate::core::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The non-root user the image runs as.
pub const UID: u64 = 10001;
pub const USER: &str = "appgear";
pub const HOME: &str = "/home/appgear";
pub const BINARY: &str = "/usr/local/bin/appgear";
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Loaded lazily by glibc (before 2.34) for `hosts: files dns`.
const NSS_LIBS: &[&str] = &["libnss_files.so.2", "libnss_dns.so.2", "libresolv.so.2"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
}

/// One entry of the tar: an absolute path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub content: Content,
    pub mode: u32,
    pub uid: u64,
}

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct RootFs {
    pub entries: Vec<Entry>,
    /// `ENV` lines for the image (name, value).
    pub env: Vec<(String, String)>,
    /// SHA-256 of the appgear binary.
    pub binary_sha256: String,
    /// The loader and libraries, as stored in the image.
    pub libraries: Vec<String>,
    pub ca_bundle: bool,
    /// `linux/amd64` and so on, when the binary's machine is one Docker names.
    pub platform: Option<&'static str>,
}

/// The root filesystem for the appgear binary at `exe` (the running one, unless a test says).
pub fn collect(exe: &Path) -> Result<RootFs> {
    let binary = std::fs::read(exe).map_err(|e| {
        Error::not_ready(format!(
            "cannot read the appgear binary {}: {e}",
            exe.display()
        ))
        .hint("run the installed appgear (see install.sh), not a copy that was moved or deleted")
    })?;
    let interp = interpreter(&binary).map_err(|why| {
        Error::not_ready(format!(
            "{} is not a Linux ELF binary ({why}): an image can only hold appgear built for Linux",
            exe.display()
        ))
        .hint("run `appgear image build` on Linux, or in a Linux VM (Docker Desktop's own VM cannot see your binary)")
    })?;
    let mut libraries: Vec<String> = Vec::new();
    if let Some(loader) = &interp {
        libraries.push(loader.clone());
        let found = match ldd(exe) {
            Ok(paths) => paths,
            Err(LddFailed::NotFound(missing)) => {
                return Err(Error::not_ready(format!(
                    "the loader does not find {} for {}",
                    missing.join(", "),
                    exe.display()
                ))
                .hint("install the missing libraries (ldd shows them), or build appgear on this machine with ./install.sh"))
            }
            Err(LddFailed::Unavailable) if !is_running(exe) => {
                return Err(Error::not_ready(format!(
                    "ldd cannot say which libraries {} links",
                    exe.display()
                ))
                .hint("install ldd (Debian: libc-bin), or run image build with that binary itself"))
            }
            Err(LddFailed::Unavailable) => {
                let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| {
                    Error::not_ready(format!(
                        "neither ldd nor /proc/self/maps can say which libraries appgear links: {e}"
                    ))
                    .hint("install ldd (Debian: libc-bin) and run image build again")
                })?;
                parse_maps(&maps, &exe.to_string_lossy())
            }
        };
        for p in found {
            if !libraries.contains(&p) {
                libraries.push(p);
            }
        }
        if let Some(dir) = libraries
            .iter()
            .find(|p| file_name(p).starts_with("libc.so"))
            .and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        {
            for nss in NSS_LIBS {
                let p = format!("{dir}/{nss}");
                if !libraries.iter().any(|l| file_name(l) == *nss) && Path::new(&p).is_file() {
                    libraries.push(p);
                }
            }
        }
    }
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for lib in &libraries {
        // Read through links: the image holds each library as a plain file at that path.
        let bytes = std::fs::read(lib).map_err(|e| {
            Error::not_ready(format!("cannot read the shared library {lib}: {e}")).hint(
                "check that the file is readable by you (ls -l it), then run image build again",
            )
        })?;
        files.push((lib.clone(), bytes, 0o755));
    }
    let ca = std::fs::read(CA_BUNDLE).ok();
    Ok(assemble(&binary, files, ca))
}

/// The entries around the binary, the libraries and the CA bundle (pure: same inputs, same
/// entries).
pub fn assemble(binary: &[u8], libs: Vec<(String, Vec<u8>, u32)>, ca: Option<Vec<u8>>) -> RootFs {
    let file = |path: &str, bytes: Vec<u8>, mode: u32| Entry {
        path: path.to_string(),
        content: Content::File(bytes),
        mode,
        uid: 0,
    };
    let mut entries = vec![
        file(BINARY, binary.to_vec(), 0o755),
        file(
            "/etc/passwd",
            format!(
                "root:x:0:0:root:/root:/sbin/nologin\n{USER}:x:{UID}:{UID}:{USER}:{HOME}:/sbin/nologin\n"
            )
            .into_bytes(),
            0o644,
        ),
        file(
            "/etc/group",
            format!("root:x:0:\n{USER}:x:{UID}:\n").into_bytes(),
            0o644,
        ),
        file("/etc/nsswitch.conf", b"hosts: files dns\n".to_vec(), 0o644),
        Entry {
            path: "/tmp".into(),
            content: Content::Dir,
            mode: 0o1777,
            uid: 0,
        },
        Entry {
            path: HOME.into(),
            content: Content::Dir,
            mode: 0o755,
            uid: UID,
        },
    ];
    let mut env = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut libraries = Vec::new();
    for (path, bytes, mode) in libs {
        if let Some((d, _)) = path.rsplit_once('/') {
            if !d.is_empty() && !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_string());
            }
        }
        libraries.push(path.clone());
        entries.push(file(&path, bytes, mode));
    }
    if !dirs.is_empty() {
        env.push(("LD_LIBRARY_PATH".to_string(), dirs.join(":")));
    }
    let ca_bundle = ca.is_some();
    if let Some(ca) = ca {
        entries.push(file(CA_BUNDLE, ca, 0o644));
        env.push(("SSL_CERT_FILE".to_string(), CA_BUNDLE.to_string()));
    }
    RootFs {
        entries,
        env,
        binary_sha256: digest::sha256_hex(binary),
        libraries,
        ca_bundle,
        platform: platform(binary),
    }
}

/// The root filesystem as a tar: parents first, sorted, owner root (the home: the user), fixed
/// times, so the same files give the same bytes.
pub fn tar(fs: &RootFs) -> Result<Vec<u8>> {
    let mut all: BTreeMap<String, &Entry> = BTreeMap::new();
    let mut parents: BTreeMap<String, ()> = BTreeMap::new();
    for e in &fs.entries {
        let rel = e.path.trim_start_matches('/').to_string();
        let mut acc = String::new();
        let comps: Vec<&str> = rel.split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            parents.insert(acc.clone(), ());
        }
        all.insert(rel, e);
    }
    let dir = Entry {
        path: String::new(),
        content: Content::Dir,
        mode: 0o755,
        uid: 0,
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut names: Vec<&String> = parents.keys().chain(all.keys()).collect();
    names.sort();
    names.dedup();
    let fail = |e: std::io::Error| Error::internal(format!("cannot write the image's tar: {e}"));
    for name in names {
        let e = all.get(name).copied().unwrap_or(&dir);
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(e.uid);
        h.set_gid(e.uid);
        h.set_mode(e.mode);
        match &e.content {
            Content::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{name}/"), std::io::empty())
                    .map_err(fail)?;
            }
            Content::File(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, name, bytes.as_slice())
                    .map_err(fail)?;
            }
        }
    }
    b.into_inner().map_err(fail)
}

enum LddFailed {
    Unavailable,
    NotFound(Vec<String>),
}

fn ldd(exe: &Path) -> std::result::Result<Vec<String>, LddFailed> {
    let out = std::process::Command::new("ldd")
        .arg(exe)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|_| LddFailed::Unavailable)?;
    if !out.status.success() {
        return Err(LddFailed::Unavailable);
    }
    parse_ldd(&String::from_utf8_lossy(&out.stdout)).map_err(LddFailed::NotFound)
}

/// The files in `ldd`'s output (`name => /path (0x…)` and `/path (0x…)`), in its order; the
/// vDSO (no file) is skipped. Libraries the loader does not find are the error.
pub fn parse_ldd(out: &str) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        let target = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    missing.push(name.trim().to_string());
                    continue;
                }
                rest
            }
            None => line,
        };
        let path = target.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') && !found.iter().any(|p| p == path) {
            found.push(path.to_string());
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// The shared objects in a `/proc/<pid>/maps` listing, each once, in order, without `exe`.
pub fn parse_maps(maps: &str, exe: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode pathname (the path may hold spaces)
        let path = line
            .splitn(6, char::is_whitespace)
            .nth(5)
            .unwrap_or("")
            .trim();
        let name = file_name(path);
        let shared = name.ends_with(".so") || name.contains(".so.");
        if path.starts_with('/')
            && shared
            && path != exe
            && !path.ends_with(" (deleted)")
            && !out.iter().any(|p| p == path)
        {
            out.push(path.to_string());
        }
    }
    out
}

/// True when `exe` is the binary of this process, whose mapped libraries are its own.
fn is_running(exe: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    std::env::current_exe()
        .ok()
        .and_then(|me| canon(&me))
        .is_some_and(|me| canon(exe) == Some(me))
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The Docker platform of an ELF executable (`linux/amd64`, `linux/arm64`, …) from its
/// `e_machine`, so the image says what it runs on whatever the Engine's own platform is.
pub fn platform(elf: &[u8]) -> Option<&'static str> {
    if elf.len() < 0x14 || &elf[..4] != b"\x7fELF" {
        return None;
    }
    let m = match elf[5] {
        1 => u16::from_le_bytes([elf[0x12], elf[0x13]]),
        2 => u16::from_be_bytes([elf[0x12], elf[0x13]]),
        _ => return None,
    };
    Some(match (m, elf[4]) {
        (0x3e, 2) => "linux/amd64",
        (0xb7, 2) => "linux/arm64",
        (0x03, 1) => "linux/386",
        (0x28, 1) => "linux/arm",
        (0xf3, 2) => "linux/riscv64",
        (0x15, 2) => "linux/ppc64le",
        (0x16, 2) => "linux/s390x",
        _ => return None,
    })
}

/// The loader an ELF executable names (`PT_INTERP`), `None` for a static one.
pub fn interpreter(elf: &[u8]) -> std::result::Result<Option<String>, String> {
    if elf.len() < 0x34 || &elf[..4] != b"\x7fELF" {
        return Err("no ELF header".into());
    }
    let wide = match elf[4] {
        1 => false,
        2 => true,
        c => return Err(format!("unknown ELF class {c}")),
    };
    let le = match elf[5] {
        1 => true,
        2 => false,
        d => return Err(format!("unknown ELF byte order {d}")),
    };
    let num = |at: usize, len: usize| -> std::result::Result<u64, String> {
        let b = elf
            .get(at..at.saturating_add(len))
            .ok_or_else(|| "truncated ELF file".to_string())?;
        let mut v: u64 = 0;
        for i in 0..len {
            let byte = if le { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
    } else {
        (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
    };
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|x| x.checked_add(phoff))
            .and_then(|x| usize::try_from(x).ok())
            .ok_or("bad program header offset")?;
        if num(at, 4)? != 3 {
            continue;
        }
        let (off, size) = if wide {
            (
                num(at.saturating_add(8), 8)?,
                num(at.saturating_add(0x20), 8)?,
            )
        } else {
            (
                num(at.saturating_add(4), 4)?,
                num(at.saturating_add(0x10), 4)?,
            )
        };
        let off = usize::try_from(off).map_err(|_| "bad PT_INTERP")?;
        let size = usize::try_from(size).map_err(|_| "bad PT_INTERP")?;
        let raw = elf
            .get(off..off.saturating_add(size))
            .ok_or("PT_INTERP outside the file")?;
        let s = raw.split(|b| *b == 0).next().unwrap_or(raw);
        let s = std::str::from_utf8(s).map_err(|_| "PT_INTERP is not text")?;
        if !s.starts_with('/') {
            return Err(format!("loader {s:?} is not an absolute path"));
        }
        return Ok(Some(s.to_string()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_of_glibc_and_musl() {
        let glibc = "\tlinux-vdso.so.1 (0x00007ffd5a1f2000)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f41fa8f6000)\n\
            \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f41fa816000)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f41f921e000)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f41fa929000)\n";
        assert_eq!(
            parse_ldd(glibc).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        let musl = "\t/lib/ld-musl-x86_64.so.1 (0x7f1c3a5a1000)\n\
            \tlibgcc_s.so.1 => /usr/lib/libgcc_s.so.1 (0x7f1c3a580000)\n\
            \tlibc.musl-x86_64.so.1 => /lib/ld-musl-x86_64.so.1 (0x7f1c3a5a1000)\n";
        assert_eq!(
            parse_ldd(musl).unwrap(),
            ["/lib/ld-musl-x86_64.so.1", "/usr/lib/libgcc_s.so.1"]
        );
        let broken = "\tlibssl.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        assert_eq!(parse_ldd(broken).unwrap_err(), ["libssl.so.3"]);
    }

    #[test]
    fn maps_give_each_shared_object_once() {
        let maps = "55d0c0a00000-55d0c0b00000 r--p 00000000 fe:01 123 /usr/local/bin/appgear\n\
            7f00-7f01 r--p 00000000 fe:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
            7f01-7f02 r-xp 00001000 fe:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
            7f02-7f03 rw-p 00000000 00:00 0 \n\
            7f03-7f04 r--p 00000000 fe:01 7 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n\
            7f04-7f05 r--p 00000000 fe:01 8 /usr/lib/locale/C.utf8/LC_CTYPE\n\
            7ffd-7ffe rw-p 00000000 00:00 0                          [stack]\n\
            7ffe-7fff r-xp 00000000 00:00 0                          [vdso]\n";
        assert_eq!(
            parse_maps(maps, "/usr/local/bin/appgear"),
            [
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
            ]
        );
    }

    #[test]
    fn this_test_binary_names_its_loader() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(exe).unwrap();
        // None for a static build.
        if let Some(l) = interpreter(&bytes).unwrap() {
            assert!(l.starts_with('/') && l.contains("ld"), "{l}");
        }
        assert!(
            interpreter(b"#!/bin/sh\necho not an elf file at all, just a script....\n").is_err()
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(platform(&bytes), Some("linux/amd64"));
        #[cfg(target_arch = "aarch64")]
        assert_eq!(platform(&bytes), Some("linux/arm64"));
        assert_eq!(platform(b"#!/bin/sh\n...................."), None);
        let mut truncated = bytes[..0x40].to_vec();
        truncated[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        truncated[0x38] = 1;
        assert!(interpreter(&truncated).is_err());
    }

    #[test]
    fn the_tree_has_a_non_root_user_tmp_and_the_binary_at_its_place() {
        let fs = assemble(
            b"\x7fELF-binary",
            vec![("/lib64/ld-linux-x86-64.so.2".into(), b"ld".to_vec(), 0o755)],
            Some(b"CERTS".to_vec()),
        );
        let bytes = tar(&fs).unwrap();
        assert_eq!(tar(&fs).unwrap(), bytes, "same files, same bytes");
        let mut a = tar::Archive::new(bytes.as_slice());
        let mut seen = BTreeMap::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            seen.insert(
                e.path().unwrap().to_string_lossy().into_owned(),
                (h.mode().unwrap(), h.uid().unwrap(), h.entry_type().is_dir()),
            );
        }
        assert_eq!(seen["usr/local/bin/appgear"], (0o755, 0, false));
        assert_eq!(seen["usr/local/bin/"], (0o755, 0, true), "parents exist");
        assert_eq!(seen["tmp/"], (0o1777, 0, true));
        assert_eq!(seen["home/appgear/"], (0o755, UID, true));
        assert_eq!(seen["lib64/ld-linux-x86-64.so.2"].0, 0o755);
        assert!(seen.contains_key("etc/ssl/certs/ca-certificates.crt"));
        assert_eq!(
            fs.env,
            [
                ("LD_LIBRARY_PATH".to_string(), "/lib64".to_string()),
                ("SSL_CERT_FILE".to_string(), CA_BUNDLE.to_string())
            ]
        );
        let passwd = fs.entries.iter().find(|e| e.path == "/etc/passwd").unwrap();
        match &passwd.content {
            Content::File(b) => {
                assert!(String::from_utf8_lossy(b)
                    .contains("appgear:x:10001:10001:appgear:/home/appgear:"))
            }
            Content::Dir => panic!("passwd is a file"),
        }
    }
}
