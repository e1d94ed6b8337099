//! An in-memory file system that keeps what was *written* apart from what is *durable*, and
//! can crash after any number of operations.
//!
//! The model is the strict POSIX one storage is written against (see `kv_node::storage::Fs`):
//! - a file's bytes become durable on `sync` of that file;
//! - a name (creation, rename, removal) becomes durable on `sync_dir` of its directory;
//! - directories themselves are durable as soon as they are created (the tests create them
//!   before the store runs).
//!
//! [`CrashFs::crash_after`] makes every mutating operation from the n-th on fail, as if the
//! machine stopped there. [`CrashFs::crash_image`] then builds the disk a reboot would see: the
//! durable names, each file with its durable bytes plus, optionally, part of the bytes written
//! after its last sync (a torn write). [`CrashFs::set_capacity`] makes writes fail with
//! `StorageFull` past a byte budget.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;

use kv_node::storage::Fs;
use kv_node::storage::FsFile;
use kv_node::storage::LockGuard;

#[derive(Debug, Default, Clone)]
struct Inode {
    written: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    written: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Mutating operations performed so far.
    ops: u64,
    crash_after: Option<u64>,
    /// Bytes that may still be written before writes fail with `StorageFull`.
    capacity: Option<usize>,
    locks: BTreeSet<PathBuf>,
}

impl State {
    /// Counts a mutating operation, or fails it if the machine has "crashed".
    fn op(&mut self) -> io::Result<()> {
        if self.crash_after.is_some_and(|n| self.ops >= n) {
            return Err(io::Error::other("simulated crash: the machine is down"));
        }
        self.ops += 1;
        Ok(())
    }

    fn dir(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(dir)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no directory {}", dir.display())))
    }

    fn inode(&mut self, path: &Path) -> io::Result<usize> {
        let (dir, name) = split(path);
        self.dir(dir)?
            .written
            .get(&name)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {}", path.display())))
    }
}

fn split(path: &Path) -> (&Path, String) {
    let dir = path.parent().expect("files live in a directory");
    let name = path
        .file_name()
        .expect("files have names")
        .to_string_lossy()
        .into_owned();
    (dir, name)
}

/// The crash-simulating file system. Clones share the same disk.
#[derive(Debug, Clone, Default)]
pub struct CrashFs(Arc<Mutex<State>>);

impl CrashFs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    /// How many mutating operations have been performed.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Lets `n` more mutating operations succeed; every later one fails.
    pub fn crash_after(&self, n: u64) {
        let mut state = self.state();
        state.crash_after = Some(state.ops + n);
    }

    /// Lets writes add `bytes` more bytes, then fail with `StorageFull`.
    pub fn set_capacity(&self, bytes: usize) {
        self.state().capacity = Some(bytes);
    }

    /// The disk a reboot would find. For each file, `torn(unsynced_len)` chooses how many of
    /// the bytes written since its last sync survive (0 keeps only the durable bytes).
    pub fn crash_image(&self, mut torn: impl FnMut(usize) -> usize) -> CrashFs {
        let state = self.state();
        let mut image = State::default();
        let mut renumber = BTreeMap::new();
        for (path, dir) in &state.dirs {
            let mut files = BTreeMap::new();
            for (name, &inode) in &dir.durable {
                let new = *renumber.entry(inode).or_insert_with(|| {
                    let old = &state.inodes[inode];
                    let mut bytes = old.durable.clone();
                    if old.written.starts_with(&old.durable) {
                        let unsynced = &old.written[old.durable.len()..];
                        let keep = torn(unsynced.len()).min(unsynced.len());
                        bytes.extend_from_slice(&unsynced[..keep]);
                    }
                    image.inodes.push(Inode {
                        written: bytes.clone(),
                        durable: bytes,
                    });
                    image.inodes.len() - 1
                });
                files.insert(name.clone(), new);
            }
            image.dirs.insert(
                path.clone(),
                Dir {
                    written: files.clone(),
                    durable: files,
                },
            );
        }
        CrashFs(Arc::new(Mutex::new(image)))
    }

    /// The current (written) content of a file, for tests that corrupt files by hand.
    pub fn contents(&self, path: &Path) -> Vec<u8> {
        let mut state = self.state();
        let inode = state.inode(path).unwrap();
        state.inodes[inode].written.clone()
    }
}

struct CrashFile {
    fs: CrashFs,
    inode: usize,
}

impl FsFile for CrashFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.fs.state();
        state.op()?;
        if let Some(capacity) = state.capacity.as_mut() {
            if buf.len() > *capacity {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "No space left on device"));
            }
            *capacity -= buf.len();
        }
        state.inodes[self.inode].written.extend_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.fs.state();
        state.op()?;
        let inode = &mut state.inodes[self.inode];
        inode.durable = inode.written.clone();
        Ok(())
    }
}

#[derive(Debug)]
struct CrashLock {
    fs: CrashFs,
    path: PathBuf,
}

impl LockGuard for CrashLock {}

impl Drop for CrashLock {
    fn drop(&mut self) {
        self.fs.state().locks.remove(&self.path);
    }
}

impl Fs for CrashFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        for ancestor in dir.ancestors() {
            state.dirs.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self.state().dir(dir)?.written.keys().cloned().collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state();
        let inode = state.inode(path)?;
        Ok(state.inodes[inode].written.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut state = self.state();
        let inode = state.inode(path)?;
        let written = &state.inodes[inode].written;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| written.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} ends first", path.display())))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut state = self.state();
        state.op()?;
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        let (dir, name) = split(path);
        state.dir(dir)?.written.insert(name, inode);
        Ok(Box::new(CrashFile {
            fs: self.clone(),
            inode,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inode = self.state().inode(path)?;
        Ok(Box::new(CrashFile {
            fs: self.clone(),
            inode,
        }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        let inode = state.inode(path)?;
        let inode = &mut state.inodes[inode];
        inode.written.truncate(len as usize);
        inode.durable = inode.written.clone();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        let (dir, name) = split(path);
        match state.dir(dir)?.written.remove(&name) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            )),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        let inode = state.inode(from)?;
        let (from_dir, from_name) = split(from);
        let (to_dir, to_name) = split(to);
        state.dir(from_dir)?.written.remove(&from_name);
        state.dir(to_dir)?.written.insert(to_name, inode);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        let dir = state.dir(dir)?;
        dir.durable = dir.written.clone();
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        if !self.state().locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "locked"));
        }
        Ok(Box::new(CrashLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}
