//! `quorumkv._native.Watch`: kv-node's [`Watch`](kv_node::client::Watch), `WATCHKEYS` resumed
//! on the next node from the last change seen (exactly once, in order), blocking with the GIL
//! released. `quorumkv.Client.watch` iterates it; `next` takes a timeout so that the Python
//! loop around it notices Ctrl-C and cancellation (stopping at a timeout loses nothing).
//!
//! Each watch has its own single-threaded runtime: it holds one connection for as long as it
//! lives and shares nothing with the client that made it.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error;
use crate::error::Kind;
use crate::error::guard;

/// One change: `(revision, key, event, value)`.
type Change = (u64, Py<PyBytes>, String, Option<Py<PyBytes>>);

/// A resumable watch (see the module docs).
#[pyclass(module = "quorumkv._native", name = "Watch", frozen)]
pub struct Watch {
    runtime: tokio::runtime::Runtime,
    inner: Mutex<Option<kv_node::client::Watch>>,
}

impl Watch {
    pub fn new(watch: kv_node::client::Watch) -> PyResult<Watch> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| error::error(Kind::Error, format!("cannot start the watch's runtime: {e}")))?;
        Ok(Watch {
            runtime,
            inner: Mutex::new(Some(watch)),
        })
    }
}

#[pymethods]
impl Watch {
    /// The next change, or `None` if none came within `timeout` seconds (the watch goes on).
    /// Raises `Compacted` when the history it needs is gone everywhere, `ReplyError` for a
    /// refused watch, `TimeoutError` when no node took it for `retry_for`.
    fn next(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Change>> {
        guard(|| {
            let timeout = Duration::try_from_secs_f64(timeout)
                .map_err(|e| error::error(Kind::InvalidArgument, format!("timeout {timeout}: {e}")))?;
            let result = py.detach(|| {
                let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                inner.as_mut().map(|watch| {
                    self.runtime.block_on(async {
                        let deadline = tokio::time::Instant::now() + timeout;
                        watch.next_until(deadline).await
                    })
                })
            });
            let change = match result {
                None => return Err(error::error(Kind::Closed, "the watch is closed")),
                Some(result) => result.map_err(error::watch)?,
            };
            Ok(change.map(|c| {
                (
                    c.revision,
                    PyBytes::new(py, &c.key).unbind(),
                    c.event,
                    c.value.map(|v| PyBytes::new(py, &v).unbind()),
                )
            }))
        })
    }

    /// The last revision yielded, or the one the watch started after (`None` before it has
    /// started without `since`): a new watch from it misses nothing.
    #[getter]
    fn revision(&self) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().and_then(kv_node::client::Watch::revision)
    }

    /// The address of the node it watches on (or will try next).
    #[getter]
    fn address(&self) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().map(|watch| watch.address().to_string())
    }

    /// Whether it is connected and watching.
    #[getter]
    fn connected(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().is_some_and(kv_node::client::Watch::is_connected)
    }

    /// Closes the connection. Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let taken = self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
            let _guard = self.runtime.enter();
            drop(taken);
        });
    }
}
