//! Writing a whole file atomically (following links, writing into devices and FIFOs, never
//! replacing them); reading an input file (regular files only, of a bounded size) and a TOML
//! file with one-line errors; whether two paths name one file; where runner keeps its cache.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The most bytes a configuration-sized input may hold (16 MiB): far above any real scenario,
/// price table, backend configuration, rubric, reference CSV, bandwidth cache or sweep cell
/// specification.
pub const CONFIG_MAX_BYTES: u64 = 16 << 20;

/// What an input file holds, which sets how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A file written by hand or kept by runner for itself (TOML, CSV, a JSON specification or
    /// cache): at most [`CONFIG_MAX_BYTES`].
    Config,
    /// Records (bench JSON, JSON Lines): no cap beyond being a regular file, since a long
    /// sweep's records legitimately run to gigabytes.
    Records,
}

impl Input {
    /// The most bytes a file of this kind may hold.
    pub fn max_bytes(self) -> u64 {
        match self {
            Input::Config => CONFIG_MAX_BYTES,
            Input::Records => u64::MAX,
        }
    }
}

/// Reads a whole input file: the one reader of every file runner takes as input (scenarios,
/// price tables, backend configurations, rubrics, records, reference CSVs, the bandwidth
/// cache). `path` must be a regular file once symbolic links are followed: a FIFO, a device
/// (`/dev/zero`), a socket or a directory is refused before it is opened, so reading never
/// waits on a writer or grows without end. A file larger than `kind` allows is refused. The
/// error's text is one line without the path (callers name it): `not a regular file (a
/// FIFO)`, `larger than 16 MiB, the most an input of this kind may be`.
pub fn read_input_bytes(path: &Path, kind: Input) -> std::io::Result<Vec<u8>> {
    let max = kind.max_bytes();
    check_input(&std::fs::metadata(path)?, max)?;
    let mut file = std::fs::File::open(path)?;
    // The file opened, in case another took the path's place meanwhile.
    let meta = file.metadata()?;
    check_input(&meta, max)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&mut file)
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// [`read_input_bytes`] as UTF-8 text (anything else is an `InvalidData` error).
pub fn read_input(path: &Path, kind: Input) -> std::io::Result<String> {
    String::from_utf8(read_input_bytes(path, kind)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8 text"))
}

/// Refuses a file that is not a regular one, or larger than `max` bytes.
fn check_input(meta: &std::fs::Metadata, max: u64) -> std::io::Result<()> {
    if !meta.is_file() {
        let what = file_kind(&meta.file_type());
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    Ok(())
}

fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "larger than {} MiB, the most an input of this kind may be",
            max >> 20
        ),
    )
}

/// `a FIFO`, `a device`, ...: what a file that is not a regular one is.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Reads and parses a TOML file (through [`read_input`], at most [`CONFIG_MAX_BYTES`]); every
/// error is one line naming the file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = read_input(path, Input::Config).map_err(|e| format!("{}: {e}", path.display()))?;
    // `line L, column C: message`, never the source line toml's Display quotes (a secret on
    // it, or megabytes of it).
    toml::from_str(&text).map_err(|e| {
        format!(
            "{}: {}",
            path.display(),
            super::toml_error::describe(&e, &text)
        )
    })
}

/// Writes `contents` to `path` atomically (a temporary file beside it, renamed over it), so a
/// reader or a crash never sees half a file. The error names the path. Where `path` is a
/// symbolic link, the file it points to is written that way; where it is an existing file that
/// is not a regular one (a device such as `/dev/null`, a FIFO), the contents are written into it
/// directly: it is never replaced.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), WriteError> {
    let io = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let target = match out_target(path).map_err(io)? {
        OutTarget::File(p) => p,
        OutTarget::Special(p) => {
            let written = (|| {
                let mut f = open_special(&p)?;
                f.write_all(contents.as_bytes())?;
                f.flush()
            })();
            return written.map_err(io);
        }
    };
    let path = target.as_path();
    let dir = out_dir(path);
    let name = file_name(path);
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let written = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    // A write that fails at any step (a full disk, say) leaves no temporary file behind.
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Whether nothing has written the file at `path` for `age` (not `lstat`-able: no).
pub fn untouched_for(path: &Path, age: std::time::Duration) -> bool {
    let since = std::fs::symlink_metadata(path).and_then(|m| m.modified());
    (since.ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

/// Creates `path` afresh: what this process's id left there before is removed, and a link
/// planted at its name is never followed (the file must be new).
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Where a write to an output path lands: the one rule every writer of OUT follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutTarget {
    /// A regular file, or one not there yet (symbolic links followed): write a temporary file
    /// beside it and rename it over this path.
    File(PathBuf),
    /// An existing file that is not a regular one (a device, a FIFO, a socket): write into it
    /// directly; never rename over it.
    Special(PathBuf),
}

/// Resolves `path` to where a write should land: symbolic links are followed (a link to a file
/// not there yet resolves to that file), then an existing non-regular, non-directory file is
/// [`OutTarget::Special`]; anything else is [`OutTarget::File`].
pub fn out_target(path: &Path) -> std::io::Result<OutTarget> {
    let mut p = path.to_path_buf();
    // The same bound as the kernel's on links followed in one lookup.
    for _ in 0..40 {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            // Not there (or not reachable): the write itself creates it or says why not.
            Err(_) => return Ok(OutTarget::File(p)),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link = std::fs::read_link(&p)?;
            // A descriptor's link in /proc names no path ("pipe:[N]", "socket:[N]", as a
            // shell's `>(...)` gives): the link itself opens what it stands for.
            let names_path = link.is_absolute() || !link.to_string_lossy().contains(":[");
            if !names_path {
                return Ok(OutTarget::Special(p));
            }
            p = if link.is_absolute() {
                link
            } else {
                out_dir(&p).join(link)
            };
            continue;
        }
        if kind.is_file() || kind.is_dir() {
            return Ok(OutTarget::File(p));
        }
        return Ok(OutTarget::Special(p));
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Opens an existing file that is not a regular one (a device, a FIFO) for writing. A FIFO
/// waits for its reader as long as the run is not interrupted (a blocking open would not see
/// Ctrl-C); the descriptor that found it is the one written to, since closing it would end
/// the reader's input.
fn open_special(path: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    if !std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return std::fs::OpenOptions::new().write(true).open(path);
    }
    loop {
        let open = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path);
        match open {
            Ok(f) => {
                // Only O_NONBLOCK goes: the descriptor may share its flags with another's.
                let flags = fcntl(&f, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
                let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
                fcntl(&f, FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
                return Ok(f);
            }
            // A FIFO that no process reads yet.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {
                if crate::util::interrupt::requested() {
                    return Err(std::io::Error::other(
                        "interrupted while waiting for a process to read the FIFO",
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an output file can be written where `path` says, checked before a run rather
/// than after it. A regular file is written beside its name and renamed over it: in the
/// directory it goes in (or the nearest one there, under which the rest is made) this process
/// must be able to create a file, which is tried (an empty file made and removed at once), so
/// that what the write itself would meet stops it here: the directory's mode, a read-only
/// mount, `chattr +i`, a file system that takes no files (`/proc`), whatever privileges this
/// process holds. A file already there must not be immutable, nor, in a sticky directory
/// (`/tmp`), another user's that this process may not replace. A file written into directly
/// (a device, a FIFO) must itself be writable. (A FIFO is not opened here: opening and closing
/// it would end the input of a process waiting to read it.)
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::unistd::{access, AccessFlags};
    let refused = |p: &Path, e: Errno| {
        let kind = std::io::Error::from(e).kind();
        std::io::Error::new(kind, format!("{}: {}", p.display(), e.desc()))
    };
    // A name ending in `/` is a directory's, which no file can be written as.
    if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).ends_with(b"/") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} ends in '/': name a file", path.display()),
        ));
    }
    let p = match out_target(path)? {
        OutTarget::Special(p) => {
            return access(&p, AccessFlags::W_OK).map_err(|e| refused(p.as_path(), e))
        }
        OutTarget::File(p) => p,
    };
    let dir = nearest_dir(out_dir(&p))?;
    let dir = dir.as_path();
    // The file is made as the write makes it, so that the error is the system's own, its
    // number kept (`tempfile_in` would wrap it with the probe's random name).
    let probe = tempfile::Builder::new()
        .prefix(".runner-probe-")
        .make_in(dir, |p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
        });
    match probe {
        // Dropping it removes it.
        Ok(probe) => drop(probe),
        Err(e) => {
            let what = match e.raw_os_error() {
                Some(n) => Errno::from_raw(n).desc().to_string(),
                None => e.to_string(),
            };
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {what}", dir.display()),
            ));
        }
    }
    let Ok(meta) = std::fs::symlink_metadata(&p) else {
        return Ok(());
    };
    // An immutable file is never replaced (by root neither). access() answers with the real
    // user's rights, so only its EPERM is taken: the kernel gives it for an immutable file
    // whoever asks (a mode or a read-only mount gives EACCES or EROFS, and the probe above has
    // settled what this process itself may do in the directory).
    if let Err(e @ Errno::EPERM) = access(&p, AccessFlags::W_OK) {
        return Err(refused(p.as_path(), e));
    }
    // In a sticky directory only the file's owner, the directory's or root replaces a file.
    use std::os::unix::fs::MetadataExt;
    if let Ok(d) = std::fs::metadata(dir) {
        let me = nix::unistd::geteuid().as_raw();
        if sticky_keeps(d.mode(), d.uid(), meta.uid(), me) {
            return Err(refused(p.as_path(), Errno::EPERM));
        }
    }
    Ok(())
}

/// Whether a directory of mode `dir_mode` owned by `dir_uid` keeps user `me` from replacing
/// (renaming over) a file in it owned by `file_uid`: the sticky bit lets only the file's
/// owner, the directory's owner or root do that.
fn sticky_keeps(dir_mode: u32, dir_uid: u32, file_uid: u32, me: u32) -> bool {
    dir_mode & 0o1000 != 0 && me != 0 && me != file_uid && me != dir_uid
}

/// The nearest of `dir` and the directories above it that is there (`.` when none is named),
/// under which the rest can be made; refused when that is not a directory, or is a link that
/// leads nowhere or in a loop (under which nothing can be made either).
pub fn nearest_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let there = dir.ancestors().find(|d| d.symlink_metadata().is_ok());
    let there = there.unwrap_or(Path::new("."));
    match std::fs::metadata(there) {
        Ok(m) if m.is_dir() => Ok(there.to_path_buf()),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", there.display()),
        )),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", there.display()),
        )),
    }
}

/// The regular file a whole-file writer (a GGUF model) renames its finished file over: `path`
/// with symbolic links followed. An existing file that is not a regular one (a device, a FIFO)
/// is refused, since a model written into it makes no sense and replacing it would be worse.
pub fn out_file(path: &Path) -> std::io::Result<PathBuf> {
    match out_target(path)? {
        OutTarget::File(p) => Ok(p),
        OutTarget::Special(_) => Err(std::io::Error::other(
            "is not a regular file (a device or FIFO); write to a file",
        )),
    }
}

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write {path}: {source}")]
pub struct WriteError {
    pub path: String,
    pub source: std::io::Error,
}

/// A file-system operation that failed, naming what it tried and on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct IoError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Turns an `io::Error` of `action` on `path` into an [`IoError`] (for `map_err`).
pub fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError {
        action,
        path,
        source,
    }
}

/// The last part of `path` as text ("" when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The directory OUT goes in ("." for a bare file name).
pub fn out_dir(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `a` and `b` name the same file (through links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    // A path that does not exist yet: its directory's canonical path and its name.
    let canonical = |p: &Path| {
        p.canonicalize()
            .ok()
            .or_else(|| Some(out_dir(p).canonicalize().ok()?.join(p.file_name()?)))
    };
    if let (Some(x), Some(y)) = (canonical(a), canonical(b)) {
        if x == y {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Space kept free on a disk when a model is written there.
pub const SPARE_BYTES: u64 = 1 << 30;

/// Whether the file system holding `dir` has room for a file of `need` bytes written to
/// `path` with [`SPARE_BYTES`] to spare, as `statvfs` reports the space free to this user for
/// that very directory (a tmpfs or any other mount included); else why not, in one line. A
/// file system of no blocks (`/proc`) holds no files; one whose space the system does not
/// report passes.
pub fn check_room(path: &Path, dir: &Path, need: u64) -> Result<(), String> {
    let Ok(s) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(());
    };
    if s.blocks() == 0 {
        return Err(format!(
            "cannot write {}: {} is on a file system that holds no files",
            path.display(),
            dir.display()
        ));
    }
    // The counts are u64 on Linux, narrower elsewhere (macOS).
    #[allow(clippy::unnecessary_cast)]
    let free = (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64);
    if free >= need.saturating_add(SPARE_BYTES) {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(format!(
        "not enough disk space for {}: it needs {:.2} GiB and {:.0} GiB kept spare, and {} \
         has {:.2} GiB free",
        path.display(),
        gib(need),
        gib(SPARE_BYTES),
        dir.display(),
        gib(free)
    ))
}

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "RUNNER_CACHE_DIR";

/// The cache root: `override_dir`, else `$RUNNER_CACHE_DIR`, else the platform cache dir
/// (`~/.cache/runner` on Linux). Models live in `<cache>/models/`.
pub fn cache_dir(override_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = override_dir {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("runner")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_that_of_the_directorys_own_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.gguf");
        assert_eq!(check_room(&out, dir.path(), 1 << 20), Ok(()));
        let e = check_room(&out, dir.path(), u64::MAX).unwrap_err();
        assert!(e.starts_with("not enough disk space for "), "{e}");
        assert!(e.contains("GiB and 1 GiB kept spare, and "), "{e}");
        // Where the system does not say (no such directory), the write itself will.
        assert_eq!(check_room(&out, &dir.path().join("missing"), 1), Ok(()));
        #[cfg(target_os = "linux")]
        {
            let e = check_room(Path::new("/proc/m.gguf"), Path::new("/proc"), 1).unwrap_err();
            assert!(
                e.ends_with("/proc is on a file system that holds no files"),
                "{e}"
            );
        }
        // A tmpfs of a known size, where the test may mount one (as root).
        let mnt = dir.path().join("small");
        std::fs::create_dir(&mnt).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&mnt)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped the tmpfs check: cannot mount a tmpfs here (not root)");
            return;
        }
        let e = check_room(&mnt.join("m.gguf"), &mnt, 1);
        let _ = std::process::Command::new("umount").arg(&mnt).status();
        assert!(
            e.as_ref().is_err_and(|e| e.ends_with("has 0.01 GiB free")),
            "an 8 MiB tmpfs: {e:?}"
        );
    }

    #[test]
    fn an_output_nothing_can_be_written_to_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for ok in [
            d.join("a.json"),
            d.join("new/sub/a.json"),
            "/dev/null".into(),
        ] {
            assert!(check_writable(&ok).is_ok(), "{}", ok.display());
        }
        // A read-only file is replaced (renamed over), its directory being writable.
        let read_only = d.join("read-only.json");
        std::fs::write(&read_only, "{}").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(&read_only, 0o444).unwrap();
        assert!(check_writable(&read_only).is_ok());
        // No file can be made in /proc: refused for root too, whom no mode stops.
        #[cfg(target_os = "linux")]
        {
            let e = check_writable(Path::new("/proc/runner-test.json")).unwrap_err();
            assert!(e.to_string().starts_with("/proc"), "{e}");
        }
        // The probe leaves nothing behind.
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".runner-probe-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A file system that reports no blocks yet holds files (a tmpfs of no size limit, as
        // ramfs and some FUSE ones): a file can be made there, so it is accepted.
        #[cfg(target_os = "linux")]
        {
            let unsized_fs = d.join("unsized");
            std::fs::create_dir(&unsized_fs).unwrap();
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=0", "tmpfs"])
                .arg(&unsized_fs)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if mounted {
                let blocks = nix::sys::statvfs::statvfs(&unsized_fs).map(|s| s.blocks());
                let r = check_writable(&unsized_fs.join("a.json"));
                let _ = std::process::Command::new("umount")
                    .arg(&unsized_fs)
                    .status();
                assert_eq!(blocks.ok(), Some(0), "a tmpfs of size=0 reports no blocks");
                assert!(r.is_ok(), "{r:?}");
            } else {
                eprintln!("skipped the tmpfs of no size: cannot mount a tmpfs here (not root)");
            }
        }
        // A directory this process may not write: by its mode, or (for root, whom no mode
        // stops) made immutable where the file system and privileges allow it.
        let locked = d.join("locked");
        std::fs::create_dir(&locked).unwrap();
        let file = locked.join("kept.json");
        std::fs::write(&file, "{}").unwrap();
        let chattr = |flag: &str, p: &Path| {
            let mut run = std::process::Command::new("chattr");
            run.arg(flag).arg(p).stderr(std::process::Stdio::null());
            run.status().is_ok_and(|s| s.success())
        };
        if !nix::unistd::Uid::effective().is_root() {
            mode(&locked, 0o555).unwrap();
            let e = check_writable(&locked.join("out.json")).unwrap_err();
            mode(&locked, 0o755).unwrap();
            assert_eq!(
                e.to_string(),
                format!("{}: Permission denied", locked.display())
            );
        } else if chattr("+i", &file) {
            // An immutable file (never replaced), then an immutable directory.
            let e = check_writable(&file);
            chattr("-i", &file);
            let denied = |p: &Path| format!("{}: Operation not permitted", p.display());
            assert_eq!(e.map_err(|e| e.to_string()), Err(denied(&file)));
            assert!(
                chattr("+i", &locked),
                "chattr +i worked on a file, not a directory"
            );
            let e = check_writable(&locked.join("out.json"));
            chattr("-i", &locked);
            assert_eq!(e.map_err(|e| e.to_string()), Err(denied(&locked)));
        } else {
            // Root passes access() on any mode: only an immutable directory stops it.
            eprintln!("skipped the immutable directory: chattr +i does not work here");
        }
    }

    #[test]
    fn a_sticky_directory_keeps_another_users_file() {
        // /tmp: mode 1777, owned by root; a file of user 1000.
        assert!(sticky_keeps(0o41777, 0, 1000, 1001));
        // Its owner, the directory's owner and root replace it.
        assert!(!sticky_keeps(0o41777, 0, 1000, 1000));
        assert!(!sticky_keeps(0o41777, 1001, 1000, 1001));
        assert!(!sticky_keeps(0o41777, 1001, 1000, 0));
        // Without the sticky bit, the directory's mode alone decides.
        assert!(!sticky_keeps(0o40777, 0, 1000, 1001));
    }

    #[test]
    fn an_atomic_write_replaces_the_file_or_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("a.json");
        write_atomic(&file, "one").unwrap();
        write_atomic(&file, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
        // A directory in the way: the rename fails, the error names the path and the
        // temporary file is gone.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let e = write_atomic(&blocked, "three").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("could not write {}", blocked.display())),
            "{e}"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    }
    /// Makes a FIFO at `path` with the system's `mkfifo`.
    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    }

    #[test]
    fn an_input_must_be_a_regular_file_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.toml");
        mkfifo(&fifo);
        // Refused before it is opened: no writer is ever waited for.
        let e = read_input(&fifo, Input::Config).unwrap_err().to_string();
        assert_eq!(e, "not a regular file (a FIFO)");
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(read_input(&link, Input::Records).is_err());
        let e = read_input(dir.path(), Input::Config)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "not a regular file (a directory)");
        let e = read_input(Path::new("/dev/zero"), Input::Records).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a device)");
        let e = read_toml::<toml::Table>(&fifo).unwrap_err();
        assert_eq!(
            e,
            format!("{}: not a regular file (a FIFO)", fifo.display())
        );
        // A regular file at the cap reads; one byte more is refused.
        let big = dir.path().join("big.csv");
        let at_cap = vec![b'a'; CONFIG_MAX_BYTES as usize];
        std::fs::write(&big, &at_cap).unwrap();
        assert_eq!(
            read_input_bytes(&big, Input::Config).unwrap().len(),
            at_cap.len()
        );
        std::fs::write(&big, [at_cap.as_slice(), b"a"].concat()).unwrap();
        let e = read_input(&big, Input::Config).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().starts_with("larger than 16 MiB"), "{e}");
        // Records have no cap of that size.
        assert_eq!(
            read_input(&big, Input::Records).unwrap().len(),
            at_cap.len() + 1
        );
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        let e = read_input(&big, Input::Config).unwrap_err().to_string();
        assert_eq!(e, "not valid UTF-8 text");
    }

    #[test]
    fn an_atomic_write_follows_a_symlink_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.md");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.md");
        std::os::unix::fs::symlink("real.md", &link).unwrap();
        write_atomic(&link, "new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link: the file it names is created.
        let dangling = dir.path().join("dangling.md");
        std::os::unix::fs::symlink("made.md", &dangling).unwrap();
        write_atomic(&dangling, "made").unwrap();
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.md")).unwrap(),
            "made"
        );
    }

    #[test]
    fn an_atomic_write_writes_into_a_fifo_without_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.csv");
        mkfifo(&fifo);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_atomic(&fifo, "a,b\n").unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(reader.join().unwrap(), "a,b\n");
        // A reader that comes later is waited for, and gets the whole text.
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                std::fs::read_to_string(fifo).unwrap()
            })
        };
        write_atomic(&fifo, "c,d\n").unwrap();
        assert_eq!(reader.join().unwrap(), "c,d\n");
        // A descriptor's link in /proc ("pipe:[N]", what a shell's `>(...)` names) is the
        // pipe itself, not a file to make beside the link.
        if cfg!(target_os = "linux") {
            let (r, w) = nix::unistd::pipe().unwrap();
            use std::os::fd::AsRawFd;
            let link = PathBuf::from(format!("/proc/self/fd/{}", w.as_raw_fd()));
            assert!(matches!(out_target(&link).unwrap(), OutTarget::Special(_)));
            assert_eq!(check_writable(&link).ok(), Some(()));
            write_atomic(&link, "e,f\n").unwrap();
            drop(w);
            let mut got = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut got).unwrap();
            assert_eq!(got, "e,f\n");
        }
        assert!(matches!(out_target(&fifo).unwrap(), OutTarget::Special(_)));
        assert!(out_file(&fifo)
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
    }

    #[test]
    fn an_atomic_write_to_a_device_node_keeps_the_device() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("devnull");
        let made = std::process::Command::new("mknod")
            .args(["-m", "666"])
            .arg(&null)
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            // Making a device node takes privileges this run does not have.
            return;
        }
        let link = dir.path().join("to-null");
        std::os::unix::fs::symlink(&null, &link).unwrap();
        write_atomic(&null, "report").unwrap();
        write_atomic(&link, "report").unwrap();
        assert!(std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
        assert!(out_file(&link).is_err());
    }

    #[test]
    fn an_output_under_a_link_loop_or_a_dangling_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("loopA"), dir.path().join("loopB"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = check_writable(&a.join("out.json")).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", a.display())), "{e}");
        let gone = dir.path().join("gone");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &gone).unwrap();
        assert!(check_writable(&gone.join("x/out.json")).is_err());
        let slash = format!("{}/", dir.path().join("newout").display());
        let e = check_writable(Path::new(&slash)).unwrap_err();
        assert_eq!(e.to_string(), format!("{slash} ends in '/': name a file"));
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = check_writable(&file.join("out.json")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory);
        // A directory not there yet, under one that is, is made later.
        assert!(check_writable(&dir.path().join("new/deeper/out.json")).is_ok());
        assert!(nearest_dir(&dir.path().join("new/deeper")).is_ok_and(|d| d == dir.path()));
    }
}
