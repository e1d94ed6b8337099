//! The error model of the storage layer.

use std::io;
use std::path::PathBuf;

use super::format::FormatError;

/// Why opening or using durable storage failed. Every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data directory is missing, not a directory, or unreadable.
    #[error("data directory {path} cannot be used: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another store, in this or another process, has the directory open.
    #[error("{path} is locked: another QuorumKV store has this directory open")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The directory belongs to another cluster node (its `node-id` file names another id).
    #[error("{path} belongs to node {found}, not node {expected}")]
    ForeignDataDir {
        /// The data directory.
        path: PathBuf,
        /// The id recorded in it.
        found: u64,
        /// The id of the node opening it.
        expected: u64,
    },
    /// A file is damaged: a checksum failure or malformed bytes that are not a torn tail.
    /// Nothing is dropped; the store refuses to open.
    #[error("{file} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file (or the directory, for a problem spanning files).
        file: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file was written by a format version this build does not read.
    #[error("{file} has format version {found}; this build reads version {expected}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version it has.
        found: u16,
        /// The version this build reads and writes.
        expected: u16,
    },
    /// The disk is full.
    #[error("disk full while writing {path}: {source}")]
    DiskFull {
        /// The file or directory being written.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "sync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

impl StorageError {
    /// Wraps an I/O failure of `op` on `path`, telling a full disk apart.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::StorageFull {
            StorageError::DiskFull { path, source }
        } else {
            StorageError::Io { op, path, source }
        }
    }

    /// Names the file a [`FormatError`] was found in.
    pub fn format(file: impl Into<PathBuf>, error: FormatError) -> Self {
        let file = file.into();
        match error {
            FormatError::Corrupt { offset, reason } => StorageError::Corrupt { file, offset, reason },
            FormatError::UnsupportedVersion { found } => StorageError::UnsupportedVersion {
                file,
                found,
                expected: super::format::FORMAT_VERSION,
            },
        }
    }

    /// The closest [`io::ErrorKind`], for reporting through openraft's `io::Error` interfaces.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StorageError::DataDir { source, .. } | StorageError::Io { source, .. } => source.kind(),
            StorageError::Locked { .. } => io::ErrorKind::WouldBlock,
            StorageError::ForeignDataDir { .. } => io::ErrorKind::InvalidInput,
            StorageError::Corrupt { .. } | StorageError::UnsupportedVersion { .. } => io::ErrorKind::InvalidData,
            StorageError::DiskFull { .. } => io::ErrorKind::StorageFull,
        }
    }
}

impl From<StorageError> for io::Error {
    fn from(error: StorageError) -> Self {
        io::Error::new(error.kind(), error)
    }
}
