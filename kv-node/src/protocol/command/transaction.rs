//! Parsers of the transaction commands: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`. The
//! connection's transaction state (`protocol/transaction.rs`) runs them.

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;

type Args = [Vec<u8>];

pub(super) fn multi(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Multi)
}

pub(super) fn exec(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Exec)
}

pub(super) fn discard(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Discard)
}

pub(super) fn watch(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Watch(args[1..].to_vec()))
}

pub(super) fn unwatch(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Unwatch)
}
