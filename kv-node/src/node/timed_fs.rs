//! A file system that times every fsync into the node's metrics and passes everything through.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::metrics::Metrics;
use crate::storage::Fs;
use crate::storage::FsFile;
use crate::storage::LockGuard;

/// [`Fs`] over another one, recording the duration of file and directory syncs.
#[derive(Debug)]
pub struct TimedFs {
    inner: Arc<dyn Fs>,
    metrics: Arc<Metrics>,
}

impl TimedFs {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Fs>, metrics: Arc<Metrics>) -> Self {
        TimedFs { inner, metrics }
    }

    fn timed<T>(&self, op: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let start = Instant::now();
        let result = op();
        self.metrics.fsync_latency.observe(start.elapsed());
        result
    }
}

struct TimedFile {
    inner: Box<dyn FsFile>,
    metrics: Arc<Metrics>,
}

impl FsFile for TimedFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        let start = Instant::now();
        let result = self.inner.sync();
        self.metrics.fsync_latency.observe(start.elapsed());
        result
    }
}

impl Fs for TimedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(path, offset, buf)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.inner.create(path)?;
        Ok(Box::new(TimedFile {
            inner,
            metrics: self.metrics.clone(),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.inner.open_append(path)?;
        Ok(Box::new(TimedFile {
            inner,
            metrics: self.metrics.clone(),
        }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.truncate(path, len)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.timed(|| self.inner.sync_dir(dir))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.inner.lock(path)
    }
}
