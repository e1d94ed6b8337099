//! Parsers of the commands about the connection, the server and the cluster.

use std::time::SystemTime;

use kv_core::raft::KvNode;
use kv_core::wire::Op;
use kv_core::wire::ReadMode;

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;
use super::action::Introspection;
use super::action::KillFilter;
use super::action::integer;
use crate::protocol::reply::Reply;

type Args = [Vec<u8>];

fn lossy(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

pub(super) fn ping(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match args {
        [_] => Ok(Action::Reply(Reply::Simple("PONG".to_string()))),
        [_, message] => Ok(Action::Reply(Reply::Bulk(message.clone()))),
        _ => Err(CommandError::Arity("ping".to_string())),
    }
}

pub(super) fn echo(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Reply(Reply::Bulk(args[1].clone())))
}

pub(super) fn quit(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Quit)
}

pub(super) fn select(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match integer(&args[1])? {
        0 => Ok(Action::Reply(Reply::ok())),
        _ => Err(CommandError::DbIndex),
    }
}

pub(super) fn auth(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match args {
        [_, password] => Ok(Action::Auth {
            user: None,
            password: password.clone(),
        }),
        [_, user, password] => Ok(Action::Auth {
            user: Some(user.clone()),
            password: password.clone(),
        }),
        _ => Err(CommandError::Syntax),
    }
}

pub(super) fn hello(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let protover = args.get(1).map(|v| integer(v)).transpose()?;
    let mut auth = None;
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"AUTH" if i + 2 < args.len() => {
                auth = Some((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            }
            b"SETNAME" if i + 1 < args.len() => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(Action::Hello { protover, auth, name })
}

pub(super) fn readonly(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::SetReadMode(ReadMode::Stale))
}

pub(super) fn readwrite(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::SetReadMode(ReadMode::Linearizable))
}

pub(super) fn info(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Info(
        args[1..].iter().map(|s| lossy(s).to_ascii_lowercase()).collect(),
    ))
}

pub(super) fn client_setname(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args[2].iter().any(|&b| b <= b' ' || b > b'~') {
        return Err(CommandError::Invalid(
            "Client names cannot contain spaces, newlines or special characters.".to_string(),
        ));
    }
    Ok(Action::SetName(args[2].clone()))
}

pub(super) fn client_getname(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::GetName)
}

pub(super) fn client_id(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::ClientId)
}

pub(super) fn client_setinfo(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Reply(Reply::ok()))
}

/// `CONFIG GET parameter...` (answered from the node's options; see the session).
pub(super) fn config_get(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::ConfigGet(
        args[2..].iter().map(|p| lossy(p).to_ascii_lowercase()).collect(),
    ))
}

fn names(args: &Args) -> Vec<String> {
    args[2..].iter().map(|a| lossy(a).to_ascii_lowercase()).collect()
}

/// `COMMAND` alone (its subcommands have parsers of their own).
pub(super) fn command(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Introspect(Introspection::All))
}

pub(super) fn command_count(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Introspect(Introspection::Count))
}

pub(super) fn command_list(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Introspect(Introspection::List))
}

pub(super) fn command_info(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Introspect(match args.len() {
        2 => Introspection::All,
        _ => Introspection::Info(names(args)),
    }))
}

pub(super) fn command_docs(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Introspect(Introspection::Docs(names(args))))
}

pub(super) fn raft_status(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::RaftStatus)
}

pub(super) fn raft_leader(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::RaftLeader)
}

pub(super) fn raft_snapshot(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Snapshot)
}

/// A node id argument: a positive integer.
fn node_id(arg: &[u8]) -> Result<u64, CommandError> {
    u64::try_from(integer(arg)?)
        .ok()
        .filter(|&id| id > 0)
        .ok_or(CommandError::NotAnInteger)
}

fn address(arg: &[u8]) -> Result<String, CommandError> {
    let text = lossy(arg);
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(text),
        _ => Err(CommandError::Invalid(format!(
            "invalid address '{text}', expected host:port"
        ))),
    }
}

pub(super) fn raft_add_learner(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args.len() > 5 {
        return Err(CommandError::Arity("raft|add-learner".to_string()));
    }
    let node = KvNode {
        raft_addr: address(&args[3])?,
        client_addr: args.get(4).map(|a| address(a)).transpose()?.unwrap_or_default(),
    };
    Ok(Action::Admin(Op::AddLearner {
        id: node_id(&args[2])?,
        node,
    }))
}

pub(super) fn raft_promote(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Admin(Op::Promote { id: node_id(&args[2])? }))
}

pub(super) fn raft_remove(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Admin(Op::Remove { id: node_id(&args[2])? }))
}

pub(super) fn raft_transfer_leader(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Admin(Op::TransferLeader { to: node_id(&args[2])? }))
}

/// `TIME`: this node's clock, as `[seconds, microseconds]`.
pub(super) fn time(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Action::Reply(Reply::Array(vec![
        Reply::text(now.as_secs().to_string()),
        Reply::text(now.subsec_micros().to_string()),
    ])))
}

pub(super) fn role(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Role)
}

/// `WAIT numreplicas timeout`, its arguments read in Redis's order.
pub(super) fn wait(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let replicas = integer(&args[1])?;
    let timeout = integer(&args[2])
        .map_err(|_| CommandError::Invalid("timeout is not an integer or out of range".to_string()))?;
    if timeout < 0 {
        return Err(CommandError::Invalid("timeout is negative".to_string()));
    }
    Ok(Action::Wait {
        replicas,
        timeout_ms: timeout.unsigned_abs(),
    })
}

pub(super) fn client_info(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::ClientInfo)
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]`.
pub(super) fn client_list(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match args.get(2).map(|a| a.to_ascii_uppercase()).as_deref() {
        None => Ok(Action::ClientList(None)),
        Some(b"TYPE") if args.len() == 4 => match args[3].to_ascii_lowercase().as_slice() {
            b"normal" => Ok(Action::ClientList(None)),
            b"master" | b"replica" | b"slave" | b"pubsub" => Ok(Action::ClientList(Some(Vec::new()))),
            _ => Err(CommandError::Invalid(format!(
                "Unknown client type '{}'",
                lossy(&args[3])
            ))),
        },
        Some(b"ID") if args.len() > 3 => {
            let ids = args[3..]
                .iter()
                .map(|id| {
                    integer(id)
                        .ok()
                        .and_then(|id| u64::try_from(id).ok())
                        .filter(|&id| id > 0)
                        .ok_or_else(|| CommandError::Invalid("Invalid client ID".to_string()))
                })
                .collect::<Result<_, _>>()?;
            Ok(Action::ClientList(Some(ids)))
        }
        _ => Err(CommandError::Syntax),
    }
}

/// `CLIENT KILL ip:port` (old form) or `CLIENT KILL <filter> <value> ...` with `ID`, `ADDR`,
/// `LADDR`, `USER`, `TYPE`, `MAXAGE` and `SKIPME`, as Redis 7.0 reads them.
pub(super) fn client_kill(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args.len() == 3 {
        return Ok(Action::ClientKill(KillFilter {
            addr: Some(lossy(&args[2])),
            old_form: true,
            ..KillFilter::default()
        }));
    }
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    for pair in args[2..].chunks(2) {
        let [name, value] = pair else {
            return Err(CommandError::Syntax);
        };
        match name.to_ascii_uppercase().as_slice() {
            b"ID" => {
                let id = integer(value)
                    .ok()
                    .and_then(|id| u64::try_from(id).ok())
                    .filter(|&id| id > 0)
                    .ok_or_else(|| CommandError::Invalid("client-id should be greater than 0".to_string()))?;
                filter.id = Some(id);
            }
            b"ADDR" => filter.addr = Some(lossy(value)),
            b"LADDR" => filter.laddr = Some(lossy(value)),
            b"USER" => filter.user = Some(lossy(value)),
            b"TYPE" => {
                filter.normal = Some(match value.to_ascii_lowercase().as_slice() {
                    b"normal" => true,
                    b"master" | b"replica" | b"slave" | b"pubsub" => false,
                    _ => return Err(CommandError::Invalid(format!("Unknown client type '{}'", lossy(value)))),
                });
            }
            b"MAXAGE" => {
                filter.max_age_secs = Some(integer(value)?.max(0).unsigned_abs());
            }
            b"SKIPME" => {
                filter.skip_me = match value.to_ascii_lowercase().as_slice() {
                    b"yes" => true,
                    b"no" => false,
                    _ => return Err(CommandError::Syntax),
                };
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(Action::ClientKill(filter))
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`, checked in Redis 7.0's order and words: the number of
/// arguments, the mode, then the timeout (milliseconds, not negative, and not past Redis's
/// clock range).
pub(super) fn client_pause(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args.len() > 4 {
        return Err(CommandError::Invalid(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            lossy(&args[1])
        )));
    }
    let all = match args.get(3).map(|mode| mode.to_ascii_lowercase()).as_deref() {
        None | Some(b"all") => true,
        Some(b"write") => false,
        Some(_) => {
            return Err(CommandError::Invalid(
                "CLIENT PAUSE mode must be WRITE or ALL".to_string(),
            ));
        }
    };
    let timeout = integer(&args[2])
        .map_err(|_| CommandError::Invalid("timeout is not an integer or out of range".to_string()))?;
    let Ok(timeout_ms) = u64::try_from(timeout) else {
        return Err(CommandError::Invalid("timeout is negative".to_string()));
    };
    // Redis adds the timeout to its clock in milliseconds. Redis 7.0 overflows there (and
    // pauses nothing); later versions refuse it with these words, and so does this node.
    if timeout_ms > i64::MAX.unsigned_abs() - crate::clock::now_ms() {
        return Err(CommandError::Invalid("timeout is out of range".to_string()));
    }
    Ok(Action::ClientPause { timeout_ms, all })
}

pub(super) fn client_unpause(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::ClientUnpause)
}

/// `CLIENT NO-EVICT on|off` / `CLIENT NO-TOUCH on|off`: nothing is evicted and no access
/// times are kept here, so both are accepted and change nothing.
fn on_off(args: &Args) -> Result<Action, CommandError> {
    if args[2].eq_ignore_ascii_case(b"on") || args[2].eq_ignore_ascii_case(b"off") {
        Ok(Action::Reply(Reply::ok()))
    } else {
        Err(CommandError::Syntax)
    }
}

pub(super) fn client_no_evict(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    on_off(args)
}

pub(super) fn client_no_touch(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    on_off(args)
}
