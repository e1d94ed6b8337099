//! The shape of one entry of the command table.

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;

/// Turns a command's arguments (its name first; for a subcommand, the container's name, then
/// the subcommand's) into an [`Action`]. Called only with an arity the table allows.
pub type Parser = fn(&[Vec<u8>], &CursorLookup) -> Result<Action, CommandError>;

/// A command flag, as `COMMAND` reports it (Redis's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Changes data: goes through the Raft log.
    Write,
    /// Reads data only.
    ReadOnly,
    /// Changes the cluster or the node (membership, snapshots).
    Admin,
    /// Constant time.
    Fast,
    /// Allowed before `AUTH`.
    NoAuth,
    /// Allowed while the node is loading its data.
    Loading,
    /// Allowed while the node may serve stale data.
    Stale,
}

impl Flag {
    /// The name `COMMAND` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Write => "write",
            Flag::ReadOnly => "readonly",
            Flag::Admin => "admin",
            Flag::Fast => "fast",
            Flag::NoAuth => "no_auth",
            Flag::Loading => "loading",
            Flag::Stale => "stale",
        }
    }
}

/// One command (or subcommand) of the table.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase name; a subcommand's is `container|sub`.
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments (the name counted), `-n` at least n.
    pub arity: i64,
    /// Its flags.
    pub flags: &'static [Flag],
    /// First key argument, last (`-1`: the last argument), step; `(0, 0, 0)` for none.
    pub keys: (i64, i64, i64),
    /// The group `COMMAND DOCS` reports (`string`, `generic`, `connection`, `server`, `cluster`,
    /// `transactions`).
    pub group: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its parser; `None` for a container whose subcommands do the work.
    pub parse: Option<Parser>,
    /// Its subcommands (`CLIENT SETNAME`, ...).
    pub subcommands: &'static [Spec],
}

impl Spec {
    /// Whether `argc` arguments (the name included) fit the arity.
    pub fn arity_allows(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether it has `flag`.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }
}
