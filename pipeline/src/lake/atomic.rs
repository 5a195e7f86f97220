//! Files appear in the lake whole or not at all: written under a hidden temporary name in the
//! final directory, fsynced, renamed into place, and the directory fsynced so the rename
//! itself survives a crash. Readers (DataFusion, Athena, DuckDB) skip names starting with `.`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A file name unique across processes and runs: `<unix ms>-<pid>-<seq>.<ext>`.
pub fn unique_name(ext: &str) -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{ms}-{}-{}.{ext}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Writes a file atomically into `dir` with `write`, returning its final path.
pub fn write_atomic(dir: &Path, name: &str, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let fin = dir.join(name);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        fs::rename(&tmp, &fin)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map(|_| fin)
}
