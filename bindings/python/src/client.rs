//! `quorumkv._native.ClusterClient`: kv-node's [`ClusterClient`](kv_node::client::ClusterClient)
//! (leader discovery, failover, backoff, exactly-once writes through a client session) for
//! Python, blocking. Every call releases the GIL while it waits on the network, so other
//! threads run meanwhile (and `quorumkv.AsyncClient` runs calls in a thread executor).
//!
//! One client runs one command at a time: calls from several threads on the same object are
//! serialized by a lock. Replies cross as `str` (status), `bytes`, `int`, `None` or `list`;
//! failures as the exception classes of `quorumkv._errors` (see [`crate::error::cluster`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use kv_node::client::ClusterError;
use kv_node::client::ClusterOptions;
use kv_node::protocol::Reply;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::types::PyList;
use pyo3::types::PyString;

use crate::error;
use crate::error::Kind;
use crate::error::guard;
use crate::transaction::Transaction;
use crate::transaction::exec_replies_to_py;
use crate::watch::Watch;

/// A client of a QuorumKV cluster (see the module docs).
#[pyclass(module = "quorumkv._native", name = "ClusterClient", frozen)]
pub struct ClusterClient {
    /// Shared with the transactions it pins: their connections were opened on it.
    runtime: Arc<tokio::runtime::Runtime>,
    inner: Mutex<Option<kv_node::client::ClusterClient>>,
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            error::error(
                Kind::InvalidArgument,
                format!("{name} must be a positive number of seconds, not {value}"),
            )
        })
}

impl ClusterClient {
    /// Runs `f` on the open client with the GIL released; `ClosedError` after `close`.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl AsyncFnOnce(&mut kv_node::client::ClusterClient) -> Result<T, ClusterError> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.as_mut().map(|client| self.runtime.block_on(f(client)))
        });
        match result {
            None => Err(error::error(Kind::Closed, "the client is closed")),
            Some(result) => result.map_err(error::cluster),
        }
    }
}

pub(crate) fn arguments(args: &[Bound<'_, PyBytes>]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// A reply as Python sees it.
pub(crate) fn reply_to_py(py: Python<'_>, reply: Reply) -> PyResult<Py<PyAny>> {
    Ok(match reply {
        Reply::Simple(text) => PyString::new(py, &text).into_any().unbind(),
        // An error reply is raised, never returned; inside an array it stays text.
        Reply::Error(text) => PyString::new(py, &text).into_any().unbind(),
        Reply::Integer(n) => n.into_pyobject(py)?.into_any().unbind(),
        Reply::Bulk(bytes) => PyBytes::new(py, &bytes).into_any().unbind(),
        Reply::Nil | Reply::NilArray => py.None(),
        // A push (RESP3) is a list, like an array.
        Reply::Array(items) | Reply::Push(items) => {
            let items = items
                .into_iter()
                .map(|item| reply_to_py(py, item))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        // RESP2 brings a map as a flat array of name, value pairs: the same here.
        Reply::Map(pairs) => {
            let mut items = Vec::with_capacity(pairs.len() * 2);
            for (name, value) in pairs {
                items.push(reply_to_py(py, name)?);
                items.push(reply_to_py(py, value)?);
            }
            PyList::new(py, items)?.into_any().unbind()
        }
    })
}

#[pymethods]
impl ClusterClient {
    /// A client of the cluster whose nodes' client addresses (`host:port`) are `addresses`.
    /// `timeout` bounds each network wait, `retry_for` each call's retries (seconds).
    /// `ca_file` turns TLS on (with `cert_file` and `key_file`, a client certificate).
    /// `sessions` runs writes through a client session (exactly-once retries).
    #[new]
    #[pyo3(signature = (addresses, timeout = 5.0, retry_for = 15.0, password = None, ca_file = None, cert_file = None, key_file = None, sessions = true))]
    #[expect(clippy::too_many_arguments, reason = "keyword arguments of one Python constructor")]
    fn new(
        addresses: Vec<String>,
        timeout: f64,
        retry_for: f64,
        password: Option<String>,
        ca_file: Option<std::path::PathBuf>,
        cert_file: Option<std::path::PathBuf>,
        key_file: Option<std::path::PathBuf>,
        sessions: bool,
    ) -> PyResult<Self> {
        guard(|| {
            let tls = match (&ca_file, &cert_file, &key_file) {
                (None, None, None) => None,
                (Some(ca), cert, key) => {
                    let pair = match (cert, key) {
                        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
                        (None, None) => None,
                        _ => {
                            return Err(error::error(
                                Kind::InvalidArgument,
                                "a client certificate needs both cert_file and key_file",
                            ));
                        }
                    };
                    Some(
                        kv_node::tls::client_config(ca, pair)
                            .map_err(|e| error::error(Kind::InvalidArgument, e.to_string()))?,
                    )
                }
                _ => return Err(error::error(Kind::InvalidArgument, "TLS needs ca_file")),
            };
            let options = ClusterOptions {
                password,
                tls,
                request_timeout: seconds("timeout", timeout)?,
                retry_for: seconds("retry_for", retry_for)?,
                sessions,
                ..ClusterOptions::default()
            };
            let client = kv_node::client::ClusterClient::new(&addresses, options).map_err(error::cluster)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| error::error(Kind::Error, format!("cannot start the client's runtime: {e}")))?;
            Ok(ClusterClient {
                runtime: Arc::new(runtime),
                inner: Mutex::new(Some(client)),
            })
        })
    }

    /// Runs one command (its name first) on the cluster, with failover and retries; returns
    /// the reply. Raises `ReplyError` for an error reply, `OutcomeUnknown` when a write may or
    /// may not have taken effect, `NotLeaderError` / `TimeoutError` when no node could run it.
    fn execute(&self, py: Python<'_>, args: Vec<Bound<'_, PyBytes>>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let args = arguments(&args);
            let reply = self.with(py, async |client| client.call(&args).await)?;
            reply_to_py(py, reply)
        })
    }

    /// Runs one command on the node at `address` only: one attempt, no retry.
    fn execute_on(&self, py: Python<'_>, address: String, args: Vec<Bound<'_, PyBytes>>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let args = arguments(&args);
            let reply = self.with(py, async |client| client.call_node(&address, &args).await)?;
            reply_to_py(py, reply)
        })
    }

    /// Runs `commands` as one transaction (`MULTI` .. `EXEC`, see
    /// [`kv_node::client::ClusterClient::transact`]): a list of replies, an error reply among
    /// them as a `ReplyError` instance (that command failed, the others took effect).
    fn transact(&self, py: Python<'_>, commands: Vec<Vec<Bound<'_, PyBytes>>>) -> PyResult<Py<PyList>> {
        guard(|| {
            let commands: Vec<Vec<Vec<u8>>> = commands.iter().map(|c| arguments(c)).collect();
            let replies = self.with(py, async |client| client.transact(&commands).await)?;
            exec_replies_to_py(py, replies)
        })
    }

    /// A connection pinned to the leader for `WATCH`, reads and `MULTI` .. `EXEC`.
    fn transaction(&self, py: Python<'_>) -> PyResult<Transaction> {
        guard(|| {
            let pinned = self.with(py, async |client| client.transaction().await)?;
            Ok(Transaction::new(self.runtime.clone(), pinned))
        })
    }

    /// A resumable watch of keys starting with `prefix` after revision `since` (`None`: the
    /// current one), over this client's nodes.
    #[pyo3(signature = (prefix, since = None))]
    fn watch(&self, prefix: &[u8], since: Option<u64>) -> PyResult<Watch> {
        guard(|| {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let client = inner
                .as_ref()
                .ok_or_else(|| error::error(Kind::Closed, "the client is closed"))?;
            let watch = client.watch(prefix, since).map_err(error::watch)?;
            Watch::new(watch)
        })
    }

    /// The addresses it knows: the seeds, then leaders it learned of.
    #[getter]
    fn addresses(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().map_or_else(Vec::new, |c| c.addresses().to_vec())
    }

    /// The id of the client session once a write has opened one.
    #[getter]
    fn session_id(&self) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.as_ref().and_then(kv_node::client::ClusterClient::session_id)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// Ends the session on the cluster (best effort) and closes every connection.
    /// Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| {
            py.detach(|| {
                let taken = self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(mut client) = taken {
                    self.runtime.block_on(client.close());
                }
            });
            Ok(())
        })
    }
}
