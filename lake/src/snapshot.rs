//! What Ocelot's readers see: the lake's files as of one manifest entry (a snapshot), never the
//! raw directory listing, so a compaction's swap is seen whole or not at all and a file a crash
//! left half-committed is never read.
//!
//! DataFusion finds a table's files by listing its object store; [`SnapshotStore`] is that
//! store with the listing narrowed to the snapshot's files (everything else passes through), so
//! the listing tables keep their partition pruning, statistics and schema adaptation.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjPath;
use object_store::{CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result};

use super::manifest::{data_files, Manifest};
use super::storage::Storage;

/// The files of a lake that readers see, relative to its root.
#[derive(Clone)]
pub struct Snapshot {
    pub storage: Storage,
    pub files: BTreeSet<String>,
    /// The manifest entry it was taken at (`None`: a lake written before manifests, read as
    /// its directory listing).
    pub seq: Option<u64>,
}

impl Snapshot {
    /// The lake's files now.
    pub fn take(storage: &Storage) -> std::io::Result<Snapshot> {
        let m = Manifest::load(storage)?;
        match m.head() {
            Some((seq, _)) => Ok(Snapshot { storage: storage.clone(), files: m.live().keys().cloned().collect(), seq: Some(seq) }),
            None => Ok(Snapshot { storage: storage.clone(), files: data_files(storage)?.into_iter().map(|f| f.rel).collect(), seq: None }),
        }
    }

    /// The Parquet files of every table (not the lake's own `_dead_letter`, `_ocelot`).
    pub fn parquet_files(&self) -> impl Iterator<Item = &String> {
        self.files.iter().filter(|f| f.ends_with(".parquet") && !f.starts_with('_'))
    }

    /// The Parquet files of one table (paths relative to the root).
    pub fn table_files(&self, table: &str) -> Vec<String> {
        let prefix = format!("{table}/");
        self.files.range(prefix.clone()..).take_while(|f| f.starts_with(&prefix)).filter(|f| f.ends_with(".parquet")).cloned().collect()
    }
}

/// An object store whose listings under the lake show only the snapshot's files.
pub struct SnapshotStore {
    inner: Arc<dyn ObjectStore>,
    /// The lake root as an object-store path (`work/lake`, no leading `/`).
    root: String,
    snapshot: Arc<Snapshot>,
}

impl SnapshotStore {
    pub fn new(snapshot: Snapshot) -> std::io::Result<SnapshotStore> {
        let (inner, root): (Arc<dyn ObjectStore>, String) = match &snapshot.storage {
            Storage::Local(dir) => {
                let root = std::fs::canonicalize(dir)?;
                (Arc::new(object_store::local::LocalFileSystem::new()), root.to_string_lossy().trim_start_matches('/').trim_end_matches('/').to_string())
            }
            Storage::Object(o) => (o.store.clone(), o.prefix.clone()),
        };
        Ok(SnapshotStore { inner, root, snapshot: Arc::new(snapshot) })
    }

    /// `loc` relative to the lake root, if it is under it.
    fn relative<'a>(&self, loc: &'a str) -> Option<&'a str> {
        if self.root.is_empty() {
            return Some(loc);
        }
        loc.strip_prefix(self.root.as_str()).and_then(|r| r.strip_prefix('/'))
    }

    /// Whether a listed object is one readers may see.
    fn visible(&self, location: &ObjPath) -> bool {
        let loc = location.as_ref();
        match self.relative(loc) {
            Some(rel) => self.snapshot.files.contains(rel),
            None => true,
        }
    }

    /// Whether a listed directory holds any of the snapshot's files.
    fn visible_dir(&self, prefix: &ObjPath) -> bool {
        let loc = prefix.as_ref();
        match self.relative(loc) {
            Some(rel) => {
                let rel = format!("{rel}/");
                self.snapshot.files.range(rel.clone()..).next().is_some_and(|f| f.starts_with(&rel))
            }
            None => true,
        }
    }
}

impl fmt::Display for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotStore({}, {}, entry {:?})", self.inner, self.snapshot.storage, self.snapshot.seq)
    }
}

impl fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for SnapshotStore {
    async fn put_opts(&self, location: &ObjPath, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &ObjPath, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjPath, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<ObjPath>>) -> BoxStream<'static, Result<ObjPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&ObjPath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = SnapshotStore { inner: self.inner.clone(), root: self.root.clone(), snapshot: self.snapshot.clone() };
        self.inner.list(prefix).filter(move |m| std::future::ready(m.as_ref().map_or(true, |m| this.visible(&m.location)))).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjPath>) -> Result<ListResult> {
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        r.objects.retain(|m| self.visible(&m.location));
        r.common_prefixes.retain(|p| self.visible_dir(p));
        Ok(r)
    }

    async fn copy_opts(&self, from: &ObjPath, to: &ObjPath, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_files_are_the_tables_own() {
        let s = Snapshot {
            storage: Storage::from(std::path::Path::new("/l")),
            files: ["api_activity/r/a.parquet", "api_activity_x/b.parquet", "api_activity/r/c.jsonl", "findings/d.parquet"].iter().map(|s| s.to_string()).collect(),
            seq: Some(3),
        };
        assert_eq!(s.table_files("api_activity"), vec!["api_activity/r/a.parquet".to_string()]);
    }
}
