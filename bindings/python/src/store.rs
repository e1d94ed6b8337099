//! `quorumkv._native.Store`: kv-node's embedded durable store, keys and values as `bytes`.
//!
//! Calls that may wait on the disk (open, writes, scans, snapshot, close) release the GIL, so
//! other Python threads run meanwhile and may use the same store: the store is shared behind a
//! read-write lock that only `close` takes exclusively.

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::PoisonError;
use std::sync::RwLock;
use std::time::Duration;

use kv_core::command::Command;
use kv_core::command::Response;
use kv_node::storage::BlockingEmbedded;
use kv_node::storage::EmbeddedError;
use kv_node::storage::EmbeddedOptions;
use kv_node::storage::FsyncPolicy;
use pyo3::prelude::*;

use crate::error;
use crate::error::Kind;
use crate::error::guard;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// An open embedded store (see the module docs).
#[pyclass(module = "quorumkv._native", name = "Store", frozen)]
pub struct Store {
    inner: RwLock<Option<BlockingEmbedded>>,
    path: PathBuf,
}

impl Store {
    /// Runs `f` on the open store with the GIL released; `ClosedError` after `close`.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&BlockingEmbedded) -> Result<T, EmbeddedError> + Send,
    ) -> PyResult<T> {
        guard(|| {
            let result = py.detach(|| {
                let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
                inner.as_ref().map(f)
            });
            match result {
                None => Err(closed(&self.path)),
                Some(result) => result.map_err(error::embedded),
            }
        })
    }
}

fn closed(path: &std::path::Path) -> PyErr {
    error::error(Kind::Closed, format!("the store at {} is closed", path.display()))
}

fn fsync_policy(fsync: &str) -> PyResult<FsyncPolicy> {
    match fsync {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        other => Err(error::error(
            Kind::InvalidArgument,
            format!("fsync must be 'always' or 'never', not {other:?}"),
        )),
    }
}

fn bound(key: Option<&[u8]>, inclusive: bool) -> Bound<&[u8]> {
    match key {
        None => Bound::Unbounded,
        Some(key) if inclusive => Bound::Included(key),
        Some(key) => Bound::Excluded(key),
    }
}

fn unexpected(what: &str, response: &Response) -> EmbeddedError {
    EmbeddedError::Stopped(format!("the store answered {what} with {response:?}"))
}

#[pymethods]
impl Store {
    /// Opens (or creates) the store in directory `path`. `fsync` is "always" or "never";
    /// `snapshot_every` applied writes the log is compacted (`None`: only on `snapshot()`).
    #[new]
    #[pyo3(signature = (path, fsync = "always", snapshot_every = Some(10_000)))]
    fn new(py: Python<'_>, path: PathBuf, fsync: &str, snapshot_every: Option<u64>) -> PyResult<Self> {
        guard(|| {
            let options = EmbeddedOptions {
                fsync: fsync_policy(fsync)?,
                snapshot_every,
                ..EmbeddedOptions::default()
            };
            let opened = py.detach(|| BlockingEmbedded::open(&path, options));
            Ok(Store {
                inner: RwLock::new(Some(opened.map_err(error::embedded)?)),
                path,
            })
        })
    }

    /// The directory the store lives in.
    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// The value at `key`, or `None`.
    fn get(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<Vec<u8>>> {
        self.with(py, |s| Ok(s.get(key)))
    }

    /// Sets `key` to `value`; with `ttl_ms`, the key expires that many milliseconds from now.
    #[pyo3(signature = (key, value, ttl_ms = None))]
    fn put(&self, py: Python<'_>, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> PyResult<()> {
        self.with(py, |s| match ttl_ms {
            None => s.put(key, value),
            Some(ms) => s.set_with_ttl(key, value, Duration::from_millis(ms)),
        })
    }

    /// Removes `key`; returns whether it was there.
    fn delete(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        self.with(py, |s| s.delete(key))
    }

    /// Removes `key` and returns the value it had (`None` if absent), in one write.
    fn pop(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<Vec<u8>>> {
        self.with(py, |s| match s.write(Command::GetDelete { key: key.to_vec() })? {
            Response::Value(value) => Ok(value),
            other => Err(unexpected("a get-delete", &other)),
        })
    }

    /// If `key` holds `expected` (`None`: absent), sets it to `new` (`None`: deletes it).
    /// Returns `(swapped, previous value)`.
    #[pyo3(signature = (key, expected, new))]
    fn cas(
        &self,
        py: Python<'_>,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> PyResult<(bool, Option<Vec<u8>>)> {
        self.with(py, |s| s.cas(key, expected, new).map(|o| (o.swapped, o.previous)))
    }

    /// Up to `limit` live `(key, value)` pairs in key order, from `start` (inclusive unless
    /// `start_inclusive` is false) up to `end` (exclusive); `None` is unbounded.
    #[pyo3(signature = (start, end, limit, start_inclusive = true))]
    fn scan(
        &self,
        py: Python<'_>,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
        start_inclusive: bool,
    ) -> PyResult<Entries> {
        self.with(py, |s| {
            Ok(s.scan(bound(start, start_inclusive), bound(end, false), limit))
        })
    }

    /// Number of live keys.
    fn len(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| Ok(s.len()))
    }

    /// Saves a snapshot of everything written so far and compacts the log.
    fn snapshot(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, BlockingEmbedded::snapshot)
    }

    /// Closes the store: waits until everything is on disk and the directory is unlocked.
    /// Closing a closed store does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| {
            let taken = py.detach(|| {
                let store = self.inner.write().unwrap_or_else(PoisonError::into_inner).take();
                store.map(BlockingEmbedded::close)
            });
            taken.transpose().map(drop).map_err(error::embedded)
        })
    }
}
