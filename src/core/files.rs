//! Files on disk, the careful way: writes are atomic (a temporary file next to the target,
//! flushed, then renamed over it), secrets are created private, and appgear's own files and
//! folders are never reached through a link (a home may belong to another user than the one
//! running appgear, often root).
//!
//! [`Dir`] is an open folder: everything below it is opened relative to its descriptor with
//! `O_NOFOLLOW`, one component at a time, so a link planted anywhere below it is refused rather
//! than followed, and swapping a folder for a link while appgear works changes nothing. The
//! path-based functions ([`create_dir_all`], [`write_atomic`]) cannot know where a tree's root is;
//! they follow a link along the way only when it belongs to the user running appgear or to root,
//! which no other user can plant.

use crate::core::error::{Error, Kind};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The suffix of the temporary file [`Dir::write_atomic`] writes before renaming it into place.
pub const TMP_SUFFIX: &str = ".appgear-tmp";

/// A link, folder, FIFO or device where appgear expects a regular file of its own (or anything
/// but a folder where it expects a folder). Carried inside an `io::Error` so every caller can
/// tell it from a permission problem.
#[derive(Debug)]
struct Refused {
    path: PathBuf,
    folder: bool,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.folder {
            "not a folder"
        } else {
            "not a regular file"
        })
    }
}

impl std::error::Error for Refused {}

fn refused(path: PathBuf, folder: bool) -> io::Error {
    io::Error::other(Refused { path, folder })
}

fn refused_of(e: &io::Error) -> Option<&Refused> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Refused>())
}

/// True for the error the functions here give for a link or special file where appgear expects
/// its own file or folder.
pub fn is_not_regular(e: &io::Error) -> bool {
    refused_of(e).is_some()
}

/// The refusal for a link or special file where appgear expects a file of its own.
pub fn refuse_not_regular(path: &Path) -> Error {
    Error::bad_input(format!(
        "{} is a link or not a regular file; appgear does not follow or overwrite it",
        path.display()
    ))
    .hint("remove it (appgear writes its own file there), or replace it with a regular file")
}

/// The refusal for a link or file where appgear expects a folder of its own.
pub fn refuse_not_folder(path: &Path) -> Error {
    Error::bad_input(format!(
        "{} is a link or not a folder; appgear does not follow it",
        path.display()
    ))
    .hint("remove it (appgear creates the folder), or replace it with a real folder")
}

/// The user-facing error for a refused path, naming the path that was refused (which may be a
/// folder above the file being written).
pub fn refusal(e: &io::Error) -> Option<Error> {
    refused_of(e).map(|r| {
        if r.folder {
            refuse_not_folder(&r.path)
        } else {
            refuse_not_regular(&r.path)
        }
    })
}

/// The one error for a file or folder appgear could not write: a refused link is bad input
/// (exit 2, naming it); anything else means the machine is not ready (exit 3).
pub fn not_writable(path: &Path, e: io::Error) -> Error {
    if let Some(r) = refusal(&e) {
        return r;
    }
    Error::new(
        Kind::NotReady,
        format!("cannot write {}: {e}", path.display()),
    )
    .hint("check that you own the folder and that the disk is not full")
    .cause(e)
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn openat(dir: RawFd, name: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; on success the kernel hands us a new descriptor we own.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What is at a name, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    File { links: u64 },
    Folder,
    Link,
    Other,
}

fn lstat_at(dir: RawFd, name: &CString) -> io::Result<Option<(Entry, u32)>> {
    // SAFETY: an all-zero `stat` is a valid out-parameter; `name` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let entry = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Entry::File {
            links: st.st_nlink as u64,
        },
        libc::S_IFDIR => Entry::Folder,
        libc::S_IFLNK => Entry::Link,
        _ => Entry::Other,
    };
    Ok(Some((entry, st.st_uid)))
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// One component of a relative, '/'-separated path; `..` and absolute paths are refused so a
/// name can never leave the folder it is relative to.
fn components(rel: &str) -> io::Result<Vec<&str>> {
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if rel.starts_with('/') || parts.contains(&"..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{rel}` is not a path inside the folder"),
        ));
    }
    Ok(parts)
}

/// An open folder. Paths given to its methods are relative to it and '/'-separated; none of
/// their components is ever followed if it is a link.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Open the folder `path` names. Links along `path` itself are followed: whoever runs appgear
    /// named it (the home is resolved to its real path once, at start).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        let fd = openat(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `rel` below this folder, for messages.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    fn walk(&self, rel: &str, create: Option<u32>) -> io::Result<Dir> {
        let mut cur = self.try_clone()?;
        for comp in components(rel)? {
            let path = cur.path.join(comp);
            let c = cstr(OsStr::new(comp))?;
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
            let fd = match openat(cur.fd.as_raw_fd(), &c, flags, 0) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
                    let mode = create.unwrap_or(0o755);
                    // SAFETY: `c` is NUL-terminated; mkdirat never follows a link at the name.
                    let rc = unsafe { libc::mkdirat(cur.fd.as_raw_fd(), c.as_ptr(), mode) };
                    if rc < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::AlreadyExists {
                            return Err(e);
                        }
                    }
                    // Opened again without following: a link raced in meanwhile is refused.
                    openat(cur.fd.as_raw_fd(), &c, flags, 0).map_err(|e| folder_error(e, &path))?
                }
                Err(e) => return Err(folder_error(e, &path)),
            };
            cur = Dir { fd, path };
        }
        Ok(cur)
    }

    /// The folder `rel` below this one; every component must be a real folder.
    pub fn open_dir(&self, rel: &str) -> io::Result<Dir> {
        self.walk(rel, None)
    }

    /// The folder `rel` below this one, creating what is missing with `mode` (less the umask);
    /// a link or file where a folder belongs is refused.
    pub fn create_dir_all(&self, rel: &str, mode: u32) -> io::Result<Dir> {
        self.walk(rel, Some(mode))
    }

    /// The folder holding `rel`, and `rel`'s last component.
    fn parent_of<'a>(&self, rel: &'a str) -> io::Result<(Dir, &'a str)> {
        let parts = components(rel)?;
        let Some((name, folders)) = parts.split_last() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        };
        Ok((self.walk(&folders.join("/"), None)?, name))
    }

    /// What is at `rel`, without following it; `None` when nothing is.
    pub fn entry(&self, rel: &str) -> io::Result<Option<Entry>> {
        let (dir, name) = self.parent_of(rel)?;
        Ok(lstat_at(dir.fd.as_raw_fd(), &cstr(OsStr::new(name))?)?.map(|(e, _)| e))
    }

    /// Nothing, or a regular file appgear may replace by renaming over it: a link, folder, FIFO
    /// or device is refused. (A hard link is harmless here: a rename leaves its other names be.)
    pub fn check_file(&self, rel: &str) -> io::Result<()> {
        match self.entry(rel)? {
            None | Some(Entry::File { .. }) => Ok(()),
            Some(_) => Err(refused(self.join(rel), false)),
        }
    }

    /// Open the regular file `rel` for reading, without following a link and without blocking on
    /// a FIFO.
    fn open_read(&self, rel: &str) -> io::Result<File> {
        let (dir, name) = self.parent_of(rel)?;
        let path = self.join(rel);
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let fd = openat(dir.fd.as_raw_fd(), &cstr(OsStr::new(name))?, flags, 0)
            .map_err(|e| file_error(e, &path))?;
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(refused(path, false));
        }
        Ok(f)
    }

    /// The bytes of the regular file `rel`.
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_read(rel)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The text of the regular file `rel`; text that is not UTF-8 is `InvalidData`.
    pub fn read_text(&self, rel: &str) -> io::Result<String> {
        String::from_utf8(self.read(rel)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Write `rel` atomically: a new temporary file (`O_CREAT|O_EXCL|O_NOFOLLOW`, with `mode`
    /// from the start, so a secret is never readable by others) is written, flushed and renamed
    /// over `rel`. A link or special file at `rel` is refused, never replaced or written through.
    pub fn write_atomic(&self, rel: &str, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        dir.write_atomic_here(name, bytes, mode)
    }

    fn write_atomic_here(&self, name: &str, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
        self.check_file(name)?;
        let target = cstr(OsStr::new(name))?;
        let tmp_name = format!("{name}{TMP_SUFFIX}");
        let tmp = cstr(OsStr::new(&tmp_name))?;
        // A leftover of an interrupted write (or anything planted under that name) is unlinked,
        // never opened: unlinking a link removes the link alone.
        self.unlink(&tmp, &self.join(&tmp_name))?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = openat(self.fd.as_raw_fd(), &tmp, flags, mode.unwrap_or(0o666))
            .map_err(|e| file_error(e, &self.join(&tmp_name)))?;
        let result = (|| {
            let mut f = File::from(fd);
            if let Some(m) = mode {
                // The umask may have taken bits away; a mode asked for is the mode set.
                f.set_permissions(std::fs::Permissions::from_mode(m))?;
            }
            f.write_all(bytes)?;
            f.sync_all()?;
            let dirfd = self.fd.as_raw_fd();
            // SAFETY: both names are NUL-terminated and relative to our own descriptor.
            check(unsafe { libc::renameat(dirfd, tmp.as_ptr(), dirfd, target.as_ptr()) })?;
            Ok(())
        })();
        if result.is_err() {
            let _ = self.unlink(&tmp, &self.join(&tmp_name));
        }
        result
    }

    fn unlink(&self, name: &CString, path: &Path) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated; unlinkat never follows a link at the name.
        match check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Err(refused(path.into(), false)),
            Err(e) => Err(e),
        }
    }

    /// Remove the file `rel` (a link there is removed, not followed); gone already is fine.
    pub fn remove_file(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        dir.unlink(&cstr(OsStr::new(name))?, &self.join(rel))
    }

    /// Open `rel` for reading and writing, creating it with `mode` when absent. Returns the file
    /// and whether this call created it. An existing file must be a regular file with no other
    /// hard link; it is never truncated here.
    pub fn open_rw(&self, rel: &str, mode: u32) -> io::Result<(File, bool)> {
        let (dir, name) = self.parent_of(rel)?;
        let path = self.join(rel);
        let c = cstr(OsStr::new(name))?;
        let base = libc::O_RDWR | libc::O_NOFOLLOW;
        let fd = dir.fd.as_raw_fd();
        match openat(fd, &c, base | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(f) => return Ok((File::from(f), true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(file_error(e, &path)),
        }
        let f = File::from(
            openat(fd, &c, base | libc::O_NONBLOCK, 0).map_err(|e| file_error(e, &path))?,
        );
        let meta = f.metadata()?;
        if !meta.is_file() || meta.nlink() != 1 {
            return Err(refused(path, false));
        }
        Ok((f, false))
    }

    /// This folder's own metadata.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        File::from(self.fd.try_clone()?).metadata()
    }

    /// Hand this folder (not what a link would point to: it is already open) to `uid:gid`.
    pub fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::fchown(self.fd.as_fd(), Some(uid), Some(gid))
    }

    /// Give the regular file `rel` mode `mode`, without following a link; a file with other hard
    /// links is refused (its mode is not only ours to change).
    pub fn set_mode(&self, rel: &str, mode: u32) -> io::Result<()> {
        let f = self.open_read(rel)?;
        if f.metadata()?.nlink() != 1 {
            return Err(refused(self.join(rel), false));
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode))
    }
}

/// ELOOP (a link under O_NOFOLLOW) and ENOTDIR (a file where a folder belongs) mean "not ours".
fn folder_error(e: io::Error, path: &Path) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => refused(path.to_path_buf(), true),
        _ => e,
    }
}

fn file_error(e: io::Error, path: &Path) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EISDIR) => refused(path.to_path_buf(), false),
        Some(libc::ENOTDIR) => {
            let parent = path.parent().unwrap_or(path).to_path_buf();
            refused(parent, true)
        }
        _ => e,
    }
}

/// Open the folder `path` from the root of the file system, creating missing folders when asked.
/// A link on the way is followed only when it belongs to the user running appgear or to root:
/// another user can plant a link in a folder they own, but not one that belongs to someone else.
fn open_dir_path(path: &Path, create: bool) -> io::Result<Dir> {
    let abs = std::path::absolute(path)?;
    let mut cur = Dir::open(Path::new("/"))?;
    let me = effective_uid();
    for comp in abs.components() {
        let name = match comp {
            Component::Normal(n) => n,
            Component::ParentDir => OsStr::new(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        let next = if name == ".." {
            cur.path.parent().unwrap_or(&cur.path).to_path_buf()
        } else {
            cur.path.join(name)
        };
        let c = cstr(name)?;
        let fd = cur.fd.as_raw_fd();
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let opened = match openat(fd, &c, flags, 0) {
            Ok(f) => f,
            // Linux answers ENOTDIR rather than ELOOP for a link under O_DIRECTORY|O_NOFOLLOW.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                match lstat_at(fd, &c)? {
                    Some((Entry::Link, owner)) if owner == me || owner == 0 => {
                        openat(fd, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)?
                    }
                    _ => return Err(refused(next, true)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                // SAFETY: `c` is NUL-terminated; mkdirat never follows a link at the name.
                let rc = unsafe { libc::mkdirat(fd, c.as_ptr(), 0o777) };
                if rc < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
                openat(fd, &c, flags, 0).map_err(|e| folder_error(e, &next))?
            }
            Err(e) => return Err(folder_error(e, &next)),
        };
        cur = Dir {
            fd: opened,
            path: next,
        };
    }
    Ok(cur)
}

/// Read a file without following a symlink in its last component; a FIFO, device or folder is
/// refused instead of blocking or misreading (see [`is_not_regular`]).
pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| file_error(e, path))?;
    if !f.metadata()?.is_file() {
        return Err(refused(path.to_path_buf(), false));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_nofollow`] for text: text that is not UTF-8 is `InvalidData`.
pub fn read_text_nofollow(path: &Path) -> io::Result<String> {
    String::from_utf8(read_nofollow(path)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `create_dir_all` for every product: missing folders are created; a link on the way is
/// followed only when it belongs to you or to root (see the module notes). Prefer
/// [`Dir::create_dir_all`] from the tree's root, which follows none.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    open_dir_path(path, true).map(|_| ())
}

/// Write `bytes` to `path` atomically; `mode` (for example 0o600 for secrets) is set before any
/// byte is written. The temporary file is created with `O_EXCL|O_NOFOLLOW`, a link at `path` is
/// refused, and links above it are followed only as [`create_dir_all`] does. Prefer
/// [`Dir::write_atomic`] from the tree's root.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = open_dir_path(parent, false)?;
    dir.write_atomic_here(&name.to_string_lossy(), bytes, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.env");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new", Some(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
    }

    #[test]
    fn nothing_below_a_dir_is_reached_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), "precious").unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink(&outside, root.join("linked")).unwrap();
        symlink(outside.join("f"), root.join("f")).unwrap();
        let dir = Dir::open(&root).unwrap();

        for result in [
            dir.create_dir_all("linked/sub", 0o755).map(|_| ()),
            dir.open_dir("linked").map(|_| ()),
            dir.write_atomic("linked/f", b"x", None),
            dir.write_atomic("f", b"x", None),
            dir.read_text("f").map(|_| ()),
            dir.set_mode("f", 0o600),
            dir.open_rw("f", 0o644).map(|_| ()),
        ] {
            let e = result.unwrap_err();
            assert!(is_not_regular(&e), "{e}");
        }
        let e = dir.create_dir_all("linked/sub", 0o755).unwrap_err();
        let err = refusal(&e).unwrap();
        assert!(
            err.message
                .contains("root/linked is a link or not a folder"),
            "{}",
            err.message
        );
        assert_eq!(
            std::fs::read_to_string(outside.join("f")).unwrap(),
            "precious"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        assert!(dir.write_atomic("../escape", b"x", None).is_err());
    }

    #[test]
    fn a_planted_temporary_file_is_unlinked_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let precious = tmp.path().join("precious");
        std::fs::write(&precious, "precious").unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink(&precious, root.join(format!("f{TMP_SUFFIX}"))).unwrap();
        let dir = Dir::open(&root).unwrap();
        dir.write_atomic("f", b"mine", Some(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
        assert_eq!(dir.read_text("f").unwrap(), "mine");
        assert!(dir.entry(&format!("f{TMP_SUFFIX}")).unwrap().is_none());
    }

    #[test]
    fn open_rw_refuses_hard_links_and_special_files_and_never_truncates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let (_, created) = dir.open_rw("lock", 0o644).unwrap();
        assert!(created);
        std::fs::write(tmp.path().join("lock"), "note").unwrap();
        let (mut f, created) = dir.open_rw("lock", 0o644).unwrap();
        assert!(!created);
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "note");
        std::fs::hard_link(tmp.path().join("lock"), tmp.path().join("other")).unwrap();
        assert!(is_not_regular(&dir.open_rw("lock", 0o644).unwrap_err()));
        std::fs::create_dir(tmp.path().join("folder")).unwrap();
        assert!(is_not_regular(&dir.open_rw("folder", 0o644).unwrap_err()));
    }

    #[test]
    fn path_functions_follow_only_links_of_their_own_user_or_root() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink(&real, tmp.path().join("mine")).unwrap();
        // A link we made ourselves is followed, as the user meant.
        create_dir_all(&tmp.path().join("mine/a/b")).unwrap();
        write_atomic(&tmp.path().join("mine/a/b/f"), b"x", None).unwrap();
        assert_eq!(std::fs::read(real.join("a/b/f")).unwrap(), b"x");
        if effective_uid() == 0 {
            // One another user planted is not.
            let theirs = tmp.path().join("theirs");
            symlink(&real, &theirs).unwrap();
            std::os::unix::fs::lchown(&theirs, Some(4321), Some(4321)).unwrap();
            let e = create_dir_all(&theirs.join("c")).unwrap_err();
            assert!(is_not_regular(&e), "{e}");
            let e = write_atomic(&theirs.join("g"), b"x", None).unwrap_err();
            assert!(is_not_regular(&e), "{e}");
            assert!(!real.join("c").exists() && !real.join("g").exists());
        }
    }
}
