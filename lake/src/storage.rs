//! Where the lake lives: a local directory, or an object store (`s3://bucket/prefix`, through
//! the `object_store` crate DataFusion reads with). Everything the lake does to its files goes
//! through the few operations here, named by paths relative to the lake root
//! (`api_activity/region=us-east-1/.../<name>.parquet`), so the commit protocol is the same on
//! both:
//!
//! | | local directory | S3 |
//! |---|---|---|
//! | a file appears whole | temp + fsync + rename + directory fsync | one PUT, or a completed multipart upload (files over 32 MiB) |
//! | create only if absent (manifest entries) | hard link from a temp (fails on an existing name) | PUT with `If-None-Match: *` |
//! | leftovers of a crash | hidden `.tmp` files | none visible (an incomplete multipart upload: S3's lifecycle rule `AbortIncompleteMultipartUpload`) |
//!
//! Object-store calls are async; the lake's writers are plain threads, so they run on one small
//! runtime of the process and the caller waits.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use super::atomic::{create_new, hex, Pending};

/// The lake's storage.
#[derive(Clone)]
pub enum Storage {
    Local(PathBuf),
    Object(Arc<ObjectLake>),
}

/// A lake in an object store.
pub struct ObjectLake {
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket` (what DataFusion registers the store under).
    pub base_url: String,
    /// The lake's prefix in the bucket, no leading or trailing `/` (may be empty).
    pub prefix: String,
}

/// Options for an S3 lake beyond what the environment gives (the AWS credential chain:
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, web identity (EKS), the ECS
/// container and EC2 instance credentials; `AWS_REGION`, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub region: Option<String>,
    /// An S3-compatible endpoint (e.g. `http://127.0.0.1:9000`); plain http is allowed for it.
    pub endpoint: Option<String>,
}

/// A file written and made durable: where (relative to the lake root), SHA-256 (hex), size.
#[derive(Debug, Clone)]
pub struct Written {
    pub rel: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A file listed in the lake.
#[derive(Debug, Clone)]
pub struct Listed {
    pub rel: String,
    pub bytes: u64,
    pub modified: SystemTime,
    /// A temporary or other dot-file (not data).
    pub hidden: bool,
}

/// Files from this size are uploaded in parts.
const MULTIPART_FROM: usize = 32 << 20;
const PART_SIZE: usize = 16 << 20;

impl From<&Path> for Storage {
    fn from(p: &Path) -> Storage {
        Storage::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Storage {
    fn from(p: PathBuf) -> Storage {
        Storage::Local(p)
    }
}

impl From<&PathBuf> for Storage {
    fn from(p: &PathBuf) -> Storage {
        Storage::Local(p.clone())
    }
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Local(p) => write!(f, "{}", p.display()),
            Storage::Object(o) if o.prefix.is_empty() => write!(f, "{}", o.base_url),
            Storage::Object(o) => write!(f, "{}/{}", o.base_url, o.prefix),
        }
    }
}

impl Storage {
    /// A lake location: a directory, a `file://` URL, or `s3://bucket[/prefix]`.
    pub fn parse(location: &str, s3: &S3Options) -> Result<Storage, String> {
        if let Some(rest) = location.strip_prefix("file://") {
            return Ok(Storage::Local(PathBuf::from(rest)));
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{location}: no bucket; write s3://BUCKET/PREFIX"));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(r) = &s3.region {
                b = b.with_region(r);
            }
            if let Some(e) = &s3.endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            } else if let Ok(e) = std::env::var("AWS_ENDPOINT_URL") {
                b = b.with_allow_http(e.starts_with("http://"));
            }
            let store = b.build().map_err(|e| format!("{location}: {e}"))?;
            return Ok(Storage::Object(Arc::new(ObjectLake { store: Arc::new(store), base_url: format!("s3://{bucket}"), prefix: prefix.trim_matches('/').to_string() })));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(format!("{location}: `{scheme}://` lakes are not supported; give a directory, a file:// URL or s3://BUCKET/PREFIX"));
        }
        if location.is_empty() {
            return Err("empty lake location; give a directory or s3://BUCKET/PREFIX".into());
        }
        Ok(Storage::Local(PathBuf::from(location)))
    }

    /// The directory, for a local lake.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            Storage::Local(p) => Some(p),
            Storage::Object(_) => None,
        }
    }

    /// A URL DataFusion can list and read (`file:///abs/lake/<rel>/`, `s3://bucket/prefix/<rel>/`).
    pub fn url_of_dir(&self, rel: &str) -> io::Result<String> {
        match self {
            Storage::Local(p) => Ok(format!("{}/{rel}/", fs::canonicalize(p)?.display())),
            Storage::Object(o) => Ok(format!("{}/{}{rel}/", o.base_url, o.key_prefix())),
        }
    }

    /// Starts a file at `rel` (relative to the root); [`FileWriter::finish`] makes it appear.
    pub fn create(&self, rel: &str) -> io::Result<FileWriter> {
        let sink = match self {
            Storage::Local(root) => {
                let path = root.join(rel);
                let (dir, name) = (path.parent().unwrap_or(root), path.file_name().and_then(|n| n.to_str()).unwrap_or("file"));
                let (pending, file) = Pending::create(dir, name)?;
                Sink::Local { pending, file }
            }
            Storage::Object(o) => Sink::Object { lake: o.clone(), rel: rel.to_string(), buf: Vec::new() },
        };
        Ok(FileWriter { sink: Some(sink), hash: Sha256::new(), bytes: 0, rel: rel.to_string() })
    }

    /// Writes `bytes` at `rel` whole.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> io::Result<Written> {
        let mut w = self.create(rel)?;
        w.write_all(bytes)?;
        w.finish()
    }

    /// Creates `rel` with `bytes` only if nothing is there; `Ok(false)` if the name was taken.
    pub fn create_new(&self, rel: &str, bytes: &[u8]) -> io::Result<bool> {
        match self {
            Storage::Local(root) => create_new(&root.join(rel), bytes),
            Storage::Object(o) => {
                let (store, path, payload) = (o.store.clone(), o.path(rel), PutPayload::from(bytes.to_vec()));
                let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
                match block(async move { store.put_opts(&path, payload, opts).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        }
    }

    /// The bytes at `rel`; `None` if there is no such file.
    pub fn read(&self, rel: &str) -> io::Result<Option<Bytes>> {
        match self {
            Storage::Local(root) => match fs::read(root.join(rel)) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Storage::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                match block(async move { store.get(&path).await?.bytes().await }) {
                    Ok(b) => Ok(Some(b)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        }
    }

    /// The bytes of `range` of the file at `rel` (a footer, say); `None` if there is no such file.
    pub fn read_range(&self, rel: &str, range: std::ops::Range<u64>) -> io::Result<Option<Bytes>> {
        match self {
            Storage::Local(root) => match File::open(root.join(rel)) {
                Ok(mut f) => {
                    use std::io::Seek;
                    f.seek(io::SeekFrom::Start(range.start))?;
                    let mut buf = vec![0u8; (range.end - range.start) as usize];
                    f.read_exact(&mut buf)?;
                    Ok(Some(Bytes::from(buf)))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Storage::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                match block(async move { store.get_range(&path, range).await }) {
                    Ok(b) => Ok(Some(b)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        }
    }

    /// SHA-256 (hex) of the file at `rel`; `None` if there is none.
    pub fn sha256(&self, rel: &str) -> io::Result<Option<String>> {
        match self {
            Storage::Local(root) => match File::open(root.join(rel)) {
                Ok(mut f) => {
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        match f.read(&mut buf)? {
                            0 => break,
                            n => h.update(&buf[..n]),
                        }
                    }
                    Ok(Some(hex(&h.finalize())))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Storage::Object(_) => Ok(self.read(rel)?.map(|b| hex(&Sha256::digest(&b)))),
        }
    }

    /// Deletes `rel`; `Ok(false)` if it was not there.
    pub fn delete(&self, rel: &str) -> io::Result<bool> {
        match self {
            Storage::Local(root) => match fs::remove_file(root.join(rel)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            Storage::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                match block(async move { store.delete(&path).await }) {
                    Ok(()) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        }
    }

    pub fn exists(&self, rel: &str) -> io::Result<bool> {
        match self {
            Storage::Local(root) => Ok(root.join(rel).exists()),
            Storage::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                match block(async move { store.head(&path).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        }
    }

    /// Every file under `rel_prefix` (a directory, `""` for the whole lake), sorted.
    pub fn list(&self, rel_prefix: &str) -> io::Result<Vec<Listed>> {
        let mut out = match self {
            Storage::Local(root) => walk(root, rel_prefix)?,
            Storage::Object(o) => {
                let store = o.store.clone();
                let key = o.key_prefix();
                let prefix = if rel_prefix.is_empty() { o.prefix.clone() } else { format!("{key}{}", rel_prefix.trim_end_matches('/')) };
                let metas: Vec<object_store::ObjectMeta> = block(async move {
                    let p = (!prefix.is_empty()).then(|| ObjPath::from(prefix));
                    store.list(p.as_ref()).try_collect().await
                })
                .map_err(io::Error::other)?;
                metas
                    .into_iter()
                    .filter_map(|m| {
                        let rel = m.location.as_ref().strip_prefix(key.as_str())?.to_string();
                        let hidden = rel.split('/').any(|s| s.starts_with('.'));
                        Some(Listed { rel, bytes: m.size, modified: SystemTime::from(m.last_modified), hidden })
                    })
                    .collect()
            }
        };
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }
}

impl ObjectLake {
    /// `prefix/` (or empty): what keys of the lake start with.
    fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    fn path(&self, rel: &str) -> ObjPath {
        ObjPath::from(format!("{}{rel}", self.key_prefix()))
    }
}

/// Every regular file under `root/rel_prefix`, relative to `root`.
fn walk(root: &Path, rel_prefix: &str) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let start = rel_prefix.trim_end_matches('/').to_string();
    let mut stack = vec![(root.join(&start), start.clone(), start.split('/').any(|s| s.starts_with('.')))];
    while let Some((dir, rel, hidden)) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let ft = e.file_type()?;
            let h = hidden || name.starts_with('.');
            if ft.is_dir() {
                stack.push((e.path(), r, h));
            } else if ft.is_file() {
                let meta = e.metadata()?;
                out.push(Listed { rel: r, bytes: meta.len(), modified: meta.modified().unwrap_or(SystemTime::now()), hidden: h });
            }
        }
    }
    Ok(out)
}

enum Sink {
    Local { pending: Pending, file: File },
    Object { lake: Arc<ObjectLake>, rel: String, buf: Vec<u8> },
}

/// A file being written; what is written is hashed on the way.
pub struct FileWriter {
    sink: Option<Sink>,
    hash: Sha256,
    bytes: u64,
    rel: String,
}

impl FileWriter {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Makes the file appear, whole and durable.
    pub fn finish(mut self) -> io::Result<Written> {
        let sink = self.sink.take().expect("finished once");
        match sink {
            Sink::Local { pending, file } => pending.finish(file)?,
            Sink::Object { lake, rel, buf } => {
                let (store, path) = (lake.store.clone(), lake.path(&rel));
                block(async move {
                    if buf.len() < MULTIPART_FROM {
                        store.put(&path, PutPayload::from(buf)).await.map(|_| ())
                    } else {
                        let upload = store.put_multipart(&path).await?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                        w.put(Bytes::from(buf));
                        w.finish().await.map(|_| ())
                    }
                })
                .map_err(io::Error::other)?
            }
        }
        Ok(Written { rel: std::mem::take(&mut self.rel), sha256: hex(&std::mem::take(&mut self.hash).finalize()), bytes: self.bytes })
    }
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.sink.as_mut().expect("not finished") {
            Sink::Local { file, .. } => file.write(buf)?,
            Sink::Object { buf: b, .. } => {
                b.extend_from_slice(buf);
                buf.len()
            }
        };
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.sink.as_mut() {
            Some(Sink::Local { file, .. }) => file.flush(),
            _ => Ok(()),
        }
    }
}

/// The process's runtime for object-store calls (two threads: the calls are I/O).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("ocelot-lake-io").enable_all().build().expect("a tokio runtime"))
}

/// Runs `f` on the lake's runtime and waits for it, from any thread (also from inside another
/// runtime, which `Runtime::block_on` would refuse).
fn block<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let handle = runtime().spawn(f);
    match futures::executor::block_on(handle) {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Whether `rel` names a temporary (for the clean-up).
pub fn is_temporary(rel: &str) -> bool {
    rel.rsplit('/').next().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
}
