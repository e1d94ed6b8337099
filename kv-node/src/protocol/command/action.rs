//! What a parsed command asks for, and why a command cannot run.

use kv_core::command::Key;
use kv_core::wire::Op;
use kv_core::wire::ReadMode;

use crate::protocol::render::Shape;
use crate::protocol::reply::Reply;

/// What a client command asks for.
#[derive(Debug)]
pub enum Action {
    /// Answered at once, no state involved.
    Reply(Reply),
    /// A read or write down the request path, its response rendered by `shape`.
    Data {
        /// The operation.
        op: Op,
        /// How to render the response.
        shape: Shape,
    },
    /// A cluster change run on the leader (`RAFT ADD-LEARNER|PROMOTE|REMOVE|TRANSFER-LEADER`).
    Admin(Op),
    /// `AUTH [user] password`.
    Auth {
        /// The user name, if given.
        user: Option<Vec<u8>>,
        /// The password.
        password: Vec<u8>,
    },
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    Hello {
        /// Requested protocol version.
        protover: Option<i64>,
        /// User name and password given with `AUTH`.
        auth: Option<(Vec<u8>, Vec<u8>)>,
        /// Name given with `SETNAME`.
        name: Option<Vec<u8>>,
    },
    /// `READONLY` / `READWRITE`.
    SetReadMode(ReadMode),
    /// `CLIENT SETNAME`.
    SetName(Vec<u8>),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT ID`.
    ClientId,
    /// `QUIT`: answer `+OK` and close.
    Quit,
    /// `INFO [section ...]`.
    Info(Vec<String>),
    /// `CONFIG GET parameter...` (lowercase; glob patterns are not supported).
    ConfigGet(Vec<String>),
    /// `RAFT STATUS`.
    RaftStatus,
    /// `RAFT LEADER`.
    RaftLeader,
    /// `RAFT SNAPSHOT`.
    Snapshot,
    /// `COMMAND ...`: about the command table itself.
    Introspect(Introspection),
    /// `ROLE`.
    Role,
    /// `WAIT numreplicas timeout`.
    Wait {
        /// Followers asked for.
        replicas: i64,
        /// Most milliseconds to wait; 0 waits as long as it takes (while it can succeed).
        timeout_ms: u64,
    },
    /// `CLIENT LIST [TYPE type] [ID id ...]`: `None` lists every connection.
    ClientList(Option<Vec<u64>>),
    /// `CLIENT INFO`.
    ClientInfo,
    /// `CLIENT KILL addr` or `CLIENT KILL filter value ...`.
    ClientKill(KillFilter),
    /// `CLIENT PAUSE timeout [WRITE|ALL]`.
    ClientPause {
        /// How long, in milliseconds.
        timeout_ms: u64,
        /// Every command (`ALL`, the default), or only those that may write (`WRITE`).
        all: bool,
    },
    /// `CLIENT UNPAUSE`.
    ClientUnpause,
    /// Pub/sub, keyspace notifications, watches (see [`crate::protocol::pubsub`]).
    PubSub(PubSubAction),
    /// `MULTI`: start queueing a transaction.
    Multi,
    /// `EXEC`: run the queued transaction.
    Exec,
    /// `DISCARD`: drop the queued transaction.
    Discard,
    /// `WATCH key...`: abort the next `EXEC` if one of the keys changes before it.
    Watch(Vec<Key>),
    /// `UNWATCH`: forget the watched keys.
    Unwatch,
}

/// Which connections `CLIENT KILL` closes: those matching every filter given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillFilter {
    /// `ID id`.
    pub id: Option<u64>,
    /// `ADDR ip:port` (or the old form's only argument).
    pub addr: Option<String>,
    /// `LADDR ip:port`.
    pub laddr: Option<String>,
    /// `USER name`: every connection is the default user's.
    pub user: Option<String>,
    /// `TYPE normal|master|replica|pubsub`: every connection is `normal`.
    pub normal: Option<bool>,
    /// `MAXAGE seconds`: connections older than this.
    pub max_age_secs: Option<u64>,
    /// Spare the calling connection (`SKIPME yes`, the default of the filter form).
    pub skip_me: bool,
    /// The old form `CLIENT KILL addr`: answers `+OK` or `No such client`, not a count.
    pub old_form: bool,
}

/// What `COMMAND` asks about the command table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// `COMMAND` and `COMMAND INFO` with no names: every command.
    All,
    /// `COMMAND INFO name...`.
    Info(Vec<String>),
    /// `COMMAND DOCS [name...]`.
    Docs(Vec<String>),
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND LIST`.
    List,
}

/// A command that cannot run as given. Rendered as `-ERR <text>`, as Redis words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such command.
    #[error("unknown command '{name}', with args beginning with: {args}")]
    Unknown {
        /// The command name as sent.
        name: String,
        /// Its first arguments, quoted.
        args: String,
    },
    /// No such subcommand.
    #[error("unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The command.
        command: String,
        /// The subcommand as sent.
        sub: String,
    },
    /// Too few or too many arguments.
    #[error("wrong number of arguments for '{0}' command")]
    Arity(String),
    /// Options that do not fit together or are unknown.
    #[error("syntax error")]
    Syntax,
    /// An argument that must be an integer is not one.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// A non-positive or overflowing expire time.
    #[error("invalid expire time in '{0}' command")]
    InvalidExpire(String),
    /// SELECT of a database other than 0.
    #[error("DB index is out of range")]
    DbIndex,
    /// A SCAN cursor this node did not hand out (or forgot).
    #[error("invalid cursor")]
    InvalidCursor,
    /// Anything else, with its own words.
    #[error("{0}")]
    Invalid(String),
}

/// Resolves a SCAN cursor to the key the previous page ended with (`None` for the start).
pub type CursorLookup<'a> = dyn Fn(&[u8]) -> Result<Option<Key>, CommandError> + 'a;

/// Parses a Redis integer argument (no `+` sign).
pub fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse().ok())
        .ok_or(CommandError::NotAnInteger)
}

/// A pub/sub, notification or watch command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubAction {
    /// `SUBSCRIBE channel...`.
    Subscribe(Vec<Vec<u8>>),
    /// `UNSUBSCRIBE [channel...]` (none: all).
    Unsubscribe(Vec<Vec<u8>>),
    /// `PSUBSCRIBE pattern...`.
    PSubscribe(Vec<Vec<u8>>),
    /// `PUNSUBSCRIBE [pattern...]` (none: all).
    PUnsubscribe(Vec<Vec<u8>>),
    /// `PUBLISH channel message`.
    Publish {
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
    /// `PUBSUB CHANNELS [pattern]`.
    Channels(Option<Vec<u8>>),
    /// `PUBSUB NUMSUB [channel...]`.
    NumSub(Vec<Vec<u8>>),
    /// `PUBSUB NUMPAT`.
    NumPat,
    /// `CONFIG SET parameter value [parameter value ...]`.
    ConfigSet(Vec<(String, Vec<u8>)>),
    /// `WATCHKEYS prefix [SINCE revision]`.
    WatchKeys {
        /// The key prefix (empty: every key).
        prefix: Vec<u8>,
        /// Stream changes after this revision; `None`: after the current one.
        since: Option<u64>,
    },
    /// `RESET`.
    Reset,
}
