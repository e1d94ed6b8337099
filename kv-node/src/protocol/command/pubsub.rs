//! Parsers of the pub/sub, keyspace-notification and watch commands (run by
//! [`crate::protocol::pubsub`]), and of `GETREV`.

use kv_core::command::Query;
use kv_core::wire::Op;

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;
use super::action::PubSubAction;
use super::action::integer;
use crate::protocol::render::Shape;

type Args = [Vec<u8>];

fn pubsub(action: PubSubAction) -> Result<Action, CommandError> {
    Ok(Action::PubSub(action))
}

pub(super) fn subscribe(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::Subscribe(args[1..].to_vec()))
}

pub(super) fn unsubscribe(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::Unsubscribe(args[1..].to_vec()))
}

pub(super) fn psubscribe(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::PSubscribe(args[1..].to_vec()))
}

pub(super) fn punsubscribe(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::PUnsubscribe(args[1..].to_vec()))
}

pub(super) fn publish(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::Publish {
        channel: args[1].clone(),
        message: args[2].clone(),
    })
}

pub(super) fn pubsub_channels(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match args {
        [_, _] => pubsub(PubSubAction::Channels(None)),
        [_, _, pattern] => pubsub(PubSubAction::Channels(Some(pattern.clone()))),
        _ => Err(CommandError::Arity("pubsub|channels".to_string())),
    }
}

pub(super) fn pubsub_numsub(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::NumSub(args[2..].to_vec()))
}

pub(super) fn pubsub_numpat(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::NumPat)
}

/// `CONFIG SET`: pairs of a parameter (lowercased) and a value.
pub(super) fn config_set(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let pairs = &args[2..];
    if !pairs.len().is_multiple_of(2) {
        return Err(CommandError::Arity("config|set".to_string()));
    }
    pubsub(PubSubAction::ConfigSet(
        pairs
            .chunks(2)
            .map(|pair| (String::from_utf8_lossy(&pair[0]).to_ascii_lowercase(), pair[1].clone()))
            .collect(),
    ))
}

/// `WATCHKEYS prefix [SINCE revision]`.
pub(super) fn watchkeys(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let since = match &args[2..] {
        [] => None,
        [word, revision] if word.eq_ignore_ascii_case(b"since") => {
            Some(u64::try_from(integer(revision)?).map_err(|_| CommandError::NotAnInteger)?)
        }
        _ => return Err(CommandError::Syntax),
    };
    pubsub(PubSubAction::WatchKeys {
        prefix: args[1].clone(),
        since,
    })
}

pub(super) fn reset(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    pubsub(PubSubAction::Reset)
}

/// `GETREV key`: the value, its mod revision and the current revision (linearizable).
pub(super) fn getrev(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Data {
        op: Op::Read(Query::GetRevision { key: args[1].clone() }),
        shape: Shape::Revisioned,
    })
}
