//! `quorumkv._native.Transaction`: kv-node's [`Transaction`](kv_node::client::Transaction), a
//! connection pinned to one node for `WATCH`, reads and `MULTI` .. `EXEC`, blocking with the
//! GIL released. `quorumkv.Client.transaction` runs redis-py's optimistic loop over it.
//!
//! It runs on the runtime of the `ClusterClient` that made it (its connection was opened
//! there). Calls on one transaction are serialized by a lock.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;

use kv_node::client::ClusterError;
use kv_node::protocol::Reply;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::types::PyList;

use crate::client::arguments;
use crate::client::reply_to_py;
use crate::error;
use crate::error::Kind;
use crate::error::guard;

/// A pinned connection (see the module docs).
#[pyclass(module = "quorumkv._native", name = "Transaction", frozen)]
pub struct Transaction {
    runtime: Arc<tokio::runtime::Runtime>,
    inner: Mutex<Option<kv_node::client::Transaction>>,
}

impl Transaction {
    pub fn new(runtime: Arc<tokio::runtime::Runtime>, pinned: kv_node::client::Transaction) -> Transaction {
        Transaction {
            runtime,
            inner: Mutex::new(Some(pinned)),
        }
    }

    /// Runs `f` on the open transaction with the GIL released; `ClosedError` after `close`.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl AsyncFnOnce(&mut kv_node::client::Transaction) -> Result<T, ClusterError> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.as_mut().map(|pinned| self.runtime.block_on(f(pinned)))
        });
        match result {
            None => Err(error::error(Kind::Closed, "the transaction is closed")),
            Some(result) => result.map_err(error::cluster),
        }
    }
}

/// `EXEC`'s replies as Python sees them: an error reply among them is a `ReplyError`
/// instance, as redis-py gives with `raise_on_error=False`.
pub fn exec_replies_to_py(py: Python<'_>, replies: Vec<Reply>) -> PyResult<Py<PyList>> {
    let items = replies
        .into_iter()
        .map(|reply| match reply {
            Reply::Error(text) => Ok(error::error(Kind::Reply, text).into_value(py).into_any()),
            reply => reply_to_py(py, reply),
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.unbind())
}

#[pymethods]
impl Transaction {
    /// `WATCH keys`: `exec` answers `None` if one of them changes from now on.
    fn watch(&self, py: Python<'_>, keys: Vec<Bound<'_, PyBytes>>) -> PyResult<()> {
        guard(|| {
            let keys = arguments(&keys);
            self.with(py, async |pinned| pinned.watch(&keys).await)
        })
    }

    /// Runs one command at once on the pinned connection and returns its reply.
    fn execute(&self, py: Python<'_>, args: Vec<Bound<'_, PyBytes>>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let args = arguments(&args);
            let reply = self.with(py, async |pinned| pinned.call(&args).await)?;
            reply_to_py(py, reply)
        })
    }

    /// `MULTI`, `commands`, `EXEC`: the replies (errors as `ReplyError` instances), or `None`
    /// when a watched key changed and nothing was applied.
    fn exec(&self, py: Python<'_>, commands: Vec<Vec<Bound<'_, PyBytes>>>) -> PyResult<Option<Py<PyList>>> {
        guard(|| {
            let commands: Vec<Vec<Vec<u8>>> = commands.iter().map(|c| arguments(c)).collect();
            match self.with(py, async |pinned| pinned.exec(&commands).await)? {
                Some(replies) => exec_replies_to_py(py, replies).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The address of the node it is pinned to.
    #[getter]
    fn address(&self) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().map(|pinned| pinned.address().to_string())
    }

    /// Whether the connection still works (closed after an interruption or a lost answer).
    #[getter]
    fn is_open(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().is_some_and(kv_node::client::Transaction::is_open)
    }

    /// Closes the connection (the node forgets its `WATCH` and queue). Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let taken = self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
            // Dropped inside the runtime its connection belongs to.
            let _guard = self.runtime.enter();
            drop(taken);
        });
    }
}
