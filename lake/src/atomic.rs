//! Files appear in a local lake whole or not at all: written under a hidden temporary name in
//! the final directory, fsynced, renamed into place, and the directory fsynced so the rename
//! itself survives a crash (as are directories the write created). Readers (DataFusion,
//! Athena, DuckDB) skip names starting with `.`; a temporary left by a crash is removed by the
//! next writer's start-up clean-up ([`super::manifest::Manifest::clean`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file name unique across processes and hosts without coordination: the time in
/// milliseconds (names sort by age) and 64 random bits (`1733490000123-9f0c2a7e5b1d4c38.parquet`).
/// A PID is not enough: in containers every writer is PID 1.
pub fn unique_name(ext: &str) -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{ms:013}-{:016x}.{ext}", rand::random::<u64>())
}

/// A local file under construction in `dir`: [`Pending::finish`] makes it durable under its
/// name; dropped unfinished, its temporary is removed.
pub struct Pending {
    dir: PathBuf,
    name: String,
    tmp: PathBuf,
    done: bool,
}

impl Pending {
    /// Creates `dir` (durably) and the temporary file for `name` in it.
    pub fn create(dir: &Path, name: &str) -> io::Result<(Pending, File)> {
        create_dir_durable(dir)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp)?;
        Ok((Pending { dir: dir.to_path_buf(), name: name.to_string(), tmp, done: false }, file))
    }

    /// fsync, rename into place, fsync the directory.
    pub fn finish(mut self, mut f: File) -> io::Result<()> {
        f.flush()?;
        f.sync_all()?;
        fs::rename(&self.tmp, self.dir.join(&self.name))?;
        File::open(&self.dir)?.sync_all()?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Creates `path` only if nothing is there, atomically and durably: written to a temporary,
/// then hard-linked to its name (a link fails when the name exists, so of two writers racing
/// for one name exactly one wins). `Ok(false)`: the name was taken.
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = path.parent().ok_or_else(|| io::Error::other("a manifest entry needs a directory"))?;
    create_dir_durable(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => {
                File::open(dir)?.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    res
}

/// `create_dir_all`, then fsync each directory it created and the parent of the first, so a
/// new partition directory (and the file in it) survives a crash.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir)?;
    // From the outermost new directory in: each one's parent now names it durably.
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sort_by_time() {
        let a = unique_name("parquet");
        let b = unique_name("parquet");
        assert_ne!(a, b);
        assert!(a.ends_with(".parquet") && a.len() == 13 + 1 + 16 + 8, "{a}");
    }

    #[test]
    fn create_new_refuses_a_taken_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m/0001.json");
        assert!(create_new(&p, b"first").unwrap());
        assert!(!create_new(&p, b"second").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        // No temporaries are left behind.
        assert_eq!(fs::read_dir(d.path().join("m")).unwrap().count(), 1);
    }

    #[test]
    fn a_dropped_file_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (p, _f) = Pending::create(&d.path().join("a/b"), "x.bin").unwrap();
        drop(p);
        assert_eq!(fs::read_dir(d.path().join("a/b")).unwrap().count(), 0);
    }
}
