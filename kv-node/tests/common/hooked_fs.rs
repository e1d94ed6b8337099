//! The real file system with hooks a test fills in: to hold or slow the file I/O it is about.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use kv_node::storage::Fs;
use kv_node::storage::FsFile;
use kv_node::storage::LockGuard;
use kv_node::storage::OsFs;

/// What a [`HookedFs`] runs before the I/O it passes on to [`OsFs`].
pub trait FsHooks: Debug + Send + Sync + 'static {
    /// Before `path` is created or opened for appending.
    fn before_open(&self, _path: &Path) {}
    /// Before bytes are written to a file.
    fn before_write(&self) {}
}

/// [`OsFs`], running `H`'s hooks first.
#[derive(Debug)]
pub struct HookedFs<H>(pub Arc<H>);

impl<H> Clone for HookedFs<H> {
    fn clone(&self) -> Self {
        HookedFs(self.0.clone())
    }
}

struct HookedFile<H>(Arc<H>, Box<dyn FsFile>);

impl<H: FsHooks> FsFile for HookedFile<H> {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.before_write();
        self.1.write_all(buf)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.1.sync()
    }
}

impl<H: FsHooks> Fs for HookedFs<H> {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        OsFs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        OsFs.list(dir)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        OsFs.read(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        OsFs.read_at(path, offset, buf)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
        self.0.before_open(path);
        Ok(Box::new(HookedFile(self.0.clone(), OsFs.create(path)?)))
    }
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
        self.0.before_open(path);
        Ok(Box::new(HookedFile(self.0.clone(), OsFs.open_append(path)?)))
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        OsFs.truncate(path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        OsFs.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        OsFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn LockGuard>> {
        OsFs.lock(path)
    }
}
