//! `quorumkv._native`: the raw Python extension under the `quorumkv` package.
//!
//! A few classes and one function, kept thin; the Pythonic surface (mapping protocol, `str`
//! keys, operation handles, iteration) is the short Python package in `python/quorumkv/`.
//!
//! - [`Store`]: kv-node's embedded durable store ([`BlockingEmbedded`](kv_node::storage::BlockingEmbedded)),
//!   keys and values as `bytes`. Every call that may wait on the disk releases the GIL.
//! - [`ClusterClient`](client::ClusterClient): kv-node's cluster client (failover, exactly-once
//!   writes through client sessions), blocking with the GIL released; `quorumkv.Client` and
//!   `quorumkv.AsyncClient` wrap it. It makes [`Transaction`](transaction::Transaction)s
//!   (a connection pinned for `WATCH` .. `EXEC`) and [`Watch`](watch::Watch)es (`WATCHKEYS`
//!   resumed across node failures).
//! - [`Simulation`]: kv-core's deterministic simulator. Views (`state`, `events`, `check`)
//!   cross as plain dicts and lists, built from their serde form.
//! - [`run_seed`]: one seeded fault run, exactly as the native `kv-sim` runs it.
//!
//! Errors are mapped mechanically (see [`error`]) onto the exception tree that
//! `quorumkv/_errors.py` defines under `quorumkv.Error`. Every entry point runs inside
//! [`error::guard`], so a Rust panic surfaces as `quorumkv.InternalError`, never as a crash or
//! as pyo3's `PanicException`.

mod client;
mod error;
mod sim;
mod store;
mod transaction;
mod watch;

use pyo3::prelude::*;

/// The `quorumkv._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<client::ClusterClient>()?;
    m.add_class::<transaction::Transaction>()?;
    m.add_class::<watch::Watch>()?;
    m.add_class::<sim::Simulation>()?;
    m.add_function(wrap_pyfunction!(sim::run_seed, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// Panics with `message` inside the edge guard, as a bug would: the test suite checks that the
/// caller gets `quorumkv.InternalError` and the interpreter lives on.
#[pyfunction]
fn _panic_for_test(message: &str) -> PyResult<()> {
    error::guard(|| panic!("{message}"))
}
