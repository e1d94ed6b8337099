//! The one error model at the Python edge: each Rust error variant maps to one exception class
//! of `quorumkv._errors` (all under `quorumkv.Error`), and panics are caught before pyo3 sees
//! them.
//!
//! ```text
//! Rust                                         Python (quorumkv.*)
//! StorageError::Locked                         LockedError      (StorageError)
//! StorageError::Corrupt | UnsupportedVersion   CorruptionError  (StorageError)
//! StorageError::DataDir | ForeignDataDir | DiskFull | Io   StorageError
//! EmbeddedError::Stopped                       StorageError     (the store stopped under us)
//! EmbeddedError::Limit, SimError::*            InvalidArgumentError (also a ValueError)
//! EmbeddedError::Timeout                       TimeoutError     (also the builtin TimeoutError)
//! EmbeddedError::Runtime                       Error
//! ClusterError::OutcomeUnknown                 OutcomeUnknown   (the write may have taken effect)
//! ClusterError::NotApplied(Failure::Reply)     ReplyError       (.code: the reply's first word)
//!   ... whose code is EXECABORT                ExecAbortError   (ReplyError)
//! Failure::Interrupted                         TransactionInterrupted (nothing applied; start over)
//! WatchError::Compacted                        Compacted        (.revision, .oldest)
//! WatchError::Failed(failure)                  as the failure above
//! Failure::NoLeader with a leader id           NotLeaderError   (.leader: that id)
//! Failure::NoLeader without one, Unreachable   TimeoutError
//! Failure::Invalid                             InvalidArgumentError
//! use after close()                            ClosedError
//! a panic                                      InternalError
//! ```

use std::any::Any;
use std::panic::AssertUnwindSafe;

use kv_core::sim::SimError;
use kv_node::client::ClusterError;
use kv_node::client::Failure;
use kv_node::client::WatchError;
use kv_node::storage::EmbeddedError;
use kv_node::storage::StorageError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An exception class of `quorumkv._errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Error`, the root.
    Error,
    /// `InternalError`: a bug (a caught panic).
    Internal,
    /// `InvalidArgumentError`.
    InvalidArgument,
    /// `TimeoutError`.
    Timeout,
    /// `ClosedError`.
    Closed,
    /// `StorageError`.
    Storage,
    /// `LockedError`.
    Locked,
    /// `CorruptionError`.
    Corruption,
    /// `OutcomeUnknown`.
    OutcomeUnknown,
    /// `ReplyError`.
    Reply,
    /// `NotLeaderError`.
    NotLeader,
    /// `ExecAbortError`.
    ExecAbort,
    /// `TransactionInterrupted`.
    Interrupted,
    /// `Compacted`.
    Compacted,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Error => "Error",
            Kind::Internal => "InternalError",
            Kind::InvalidArgument => "InvalidArgumentError",
            Kind::Timeout => "TimeoutError",
            Kind::Closed => "ClosedError",
            Kind::Storage => "StorageError",
            Kind::Locked => "LockedError",
            Kind::Corruption => "CorruptionError",
            Kind::OutcomeUnknown => "OutcomeUnknown",
            Kind::Reply => "ReplyError",
            Kind::NotLeader => "NotLeaderError",
            Kind::ExecAbort => "ExecAbortError",
            Kind::Interrupted => "TransactionInterrupted",
            Kind::Compacted => "Compacted",
        }
    }
}

/// An exception of class `kind` with `message`.
pub fn error(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    error_with(kind, message.clone(), move |class| PyErr::from_type(class, message))
}

/// An exception of class `kind`, constructed by `build` (with the constructor arguments that
/// class takes); `message` tells what happened if the class cannot be found.
fn error_with(kind: Kind, message: String, build: impl FnOnce(Bound<'_, PyType>) -> PyErr) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("quorumkv._errors")
            .and_then(|module| module.getattr(kind.class_name()))
            .and_then(|class| class.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => build(class),
            // The package is broken (the module imported without its Python half): say so.
            Err(e) => PyRuntimeError::new_err(format!("{message} (and quorumkv._errors is unusable: {e})")),
        }
    })
}

/// The exception class of a storage failure.
fn storage_kind(e: &StorageError) -> Kind {
    match e {
        StorageError::Locked { .. } => Kind::Locked,
        StorageError::Corrupt { .. } | StorageError::UnsupportedVersion { .. } => Kind::Corruption,
        StorageError::DataDir { .. }
        | StorageError::ForeignDataDir { .. }
        | StorageError::DiskFull { .. }
        | StorageError::Io { .. } => Kind::Storage,
    }
}

/// Maps an embedded store error.
pub fn embedded(e: EmbeddedError) -> PyErr {
    let kind = match &e {
        EmbeddedError::Storage(s) => storage_kind(s),
        EmbeddedError::Limit(_) => Kind::InvalidArgument,
        EmbeddedError::Stopped(_) => Kind::Storage,
        EmbeddedError::Timeout(_) => Kind::Timeout,
        EmbeddedError::Runtime(_) => Kind::Error,
    };
    error(kind, e.to_string())
}

/// Maps a simulator error: every one is an invalid request.
pub fn sim(e: SimError) -> PyErr {
    let kind = match &e {
        SimError::NodeCount(_)
        | SimError::NoSuchNode(_)
        | SimError::AlreadyCrashed(_)
        | SimError::NotCrashed(_)
        | SimError::NodeInTwoGroups(_)
        | SimError::DropRate(_)
        | SimError::Options(_)
        | SimError::TooManyNodes(_)
        | SimError::TooFewVoters(_)
        | SimError::Removed(_) => Kind::InvalidArgument,
    };
    error(kind, e.to_string())
}

/// Maps a cluster client error.
pub fn cluster(e: ClusterError) -> PyErr {
    match e {
        ClusterError::OutcomeUnknown(_) => error(Kind::OutcomeUnknown, e.to_string()),
        ClusterError::NotApplied(failure) => not_applied(failure),
    }
}

/// Maps a failure after which nothing took effect.
fn not_applied(failure: Failure) -> PyErr {
    let message = failure.to_string();
    match failure {
        Failure::Reply(text) if failure_code(&text) == "EXECABORT" => error(Kind::ExecAbort, text),
        Failure::Reply(text) => error(Kind::Reply, text),
        Failure::NoLeader { leader: Some(id), .. } => error_with(Kind::NotLeader, message.clone(), |class| {
            PyErr::from_type(class, (message, id))
        }),
        Failure::NoLeader { leader: None, .. } | Failure::Unreachable { .. } => error(Kind::Timeout, message),
        Failure::Invalid(_) => error(Kind::InvalidArgument, message),
        Failure::Interrupted(_) => error(Kind::Interrupted, message),
    }
}

fn failure_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

/// Maps a watch error.
pub fn watch(e: WatchError) -> PyErr {
    match e {
        WatchError::Compacted { since, oldest } => {
            let message = e.to_string();
            error_with(Kind::Compacted, message.clone(), |class| {
                PyErr::from_type(class, (message, since, oldest))
            })
        }
        WatchError::Failed(failure) => not_applied(failure),
    }
}

/// Runs `f`, turning a panic into `quorumkv.InternalError`. Every entry point goes through it.
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(error(
            Kind::Internal,
            format!(
                "internal error (a bug in QuorumKV): {}",
                panic_message(payload.as_ref())
            ),
        ))
    })
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}
