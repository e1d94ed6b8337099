//! Parsers of `SESSION NEW|RUN|END`: client sessions, for exactly-once writes (the README
//! documents them; kv-core's store keeps the sessions, through the log).
//!
//! `SESSION RUN id seq acked command [arg ...]` parses the wrapped command through the same
//! table as any other, then wraps a write in [`Command::Session`], keeping the write's reply
//! shape: the reply is the command's own (the recorded one for a repeat). A read passes
//! through unchanged, so a client may send everything through `SESSION RUN`.

use kv_core::command::Command;
use kv_core::wire::Op;

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;
use super::action::integer;
use crate::protocol::render::Shape;

type Args = [Vec<u8>];

/// `SESSION NEW`'s time to live without `TTL`, in seconds.
pub const DEFAULT_TTL_S: i64 = 600;
/// The longest `TTL` `SESSION NEW` accepts, in seconds (a day).
pub const MAX_TTL_S: i64 = 86_400;

/// A session id, sequence number or acknowledgement: a non-negative integer.
fn number(arg: &[u8]) -> Result<u64, CommandError> {
    u64::try_from(integer(arg)?).map_err(|_| CommandError::NotAnInteger)
}

/// `SESSION NEW [TTL seconds]`.
pub(super) fn session_new(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let seconds = match args {
        [_, _] => DEFAULT_TTL_S,
        [_, _, option, seconds] if option.eq_ignore_ascii_case(b"TTL") => {
            let seconds = integer(seconds)?;
            if !(1..=MAX_TTL_S).contains(&seconds) {
                return Err(CommandError::Invalid(format!(
                    "invalid session TTL: between 1 and {MAX_TTL_S} seconds"
                )));
            }
            seconds
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Action::Data {
        op: Op::Write {
            command: Command::RegisterSession {
                ttl_ms: seconds.unsigned_abs() * 1000,
            },
            ttl_ms: None,
        },
        shape: Shape::SessionId,
    })
}

/// `SESSION RUN id seq acked command [arg ...]`.
pub(super) fn session_run(args: &Args, cursor_key: &CursorLookup) -> Result<Action, CommandError> {
    let (id, seq, acked) = (number(&args[2])?, number(&args[3])?, number(&args[4])?);
    let inner = &args[5..];
    if inner[0].eq_ignore_ascii_case(b"SESSION") {
        return Err(CommandError::Invalid(
            "SESSION RUN cannot wrap a SESSION command".to_string(),
        ));
    }
    match super::parse(inner, cursor_key)? {
        Action::Data {
            op: Op::Write { command, ttl_ms },
            shape,
        } => Ok(Action::Data {
            op: Op::Write {
                command: command.in_session(id, seq, acked),
                ttl_ms,
            },
            shape,
        }),
        read @ Action::Data { op: Op::Read(_), .. } => Ok(read),
        _ => Err(CommandError::Invalid(format!(
            "SESSION RUN takes a data command, not '{}'",
            String::from_utf8_lossy(&inner[0])
        ))),
    }
}

/// `SESSION END id`.
pub(super) fn session_end(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(Action::Data {
        op: Op::Write {
            command: Command::EndSession { id: number(&args[2])? },
            ttl_ms: None,
        },
        shape: Shape::Count,
    })
}

#[cfg(test)]
mod tests {
    use kv_core::command::Key;
    use kv_core::command::Query;

    use super::*;

    fn parse(text: &str) -> Result<Action, CommandError> {
        let args: Vec<Vec<u8>> = text.split(' ').map(|s| s.as_bytes().to_vec()).collect();
        super::super::parse(&args, &|_: &[u8]| -> Result<Option<Key>, CommandError> { Ok(None) })
    }

    fn write(text: &str) -> (Command, Option<u64>, Shape) {
        match parse(text) {
            Ok(Action::Data {
                op: Op::Write { command, ttl_ms },
                shape,
            }) => (command, ttl_ms, shape),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn session_new_and_end() {
        assert_eq!(write("SESSION NEW").0, Command::RegisterSession { ttl_ms: 600_000 });
        let (command, _, shape) = write("session new ttl 5");
        assert_eq!(command, Command::RegisterSession { ttl_ms: 5_000 });
        assert!(matches!(shape, Shape::SessionId));
        for bad in ["SESSION NEW TTL 0", "SESSION NEW TTL 86401"] {
            assert!(
                matches!(parse(bad), Err(CommandError::Invalid(ref e)) if e.contains("TTL")),
                "{bad}"
            );
        }
        assert_eq!(parse("SESSION NEW TTL x").unwrap_err(), CommandError::NotAnInteger);
        assert_eq!(parse("SESSION NEW FOR 5").unwrap_err(), CommandError::Syntax);
        assert_eq!(write("SESSION END 9").0, Command::EndSession { id: 9 });
        assert_eq!(parse("SESSION END -1").unwrap_err(), CommandError::NotAnInteger);
    }

    #[test]
    fn session_run_wraps_a_write_and_passes_a_read() {
        let (command, ttl_ms, shape) = write("SESSION RUN 3 4 2 INCR k");
        assert_eq!(
            command,
            Command::Session {
                id: 3,
                seq: 4,
                acked: 2,
                command: Box::new(Command::Increment {
                    key: b"k".to_vec(),
                    delta: 1
                }),
            }
        );
        assert_eq!(ttl_ms, None);
        assert!(matches!(shape, Shape::Integer));
        // The wrapped write keeps its relative TTL (the leader resolves it) and its shape.
        let (_, ttl_ms, shape) = write("SESSION RUN 3 5 4 SET k v EX 10 GET");
        assert_eq!(ttl_ms, Some(10_000));
        assert!(matches!(shape, Shape::Set { get: true }));
        assert!(matches!(
            parse("SESSION RUN 3 6 5 GET k"),
            Ok(Action::Data {
                op: Op::Read(Query::Get { .. }),
                shape: Shape::Value
            })
        ));
    }

    #[test]
    fn session_run_refuses_what_it_cannot_wrap() {
        assert!(matches!(parse("SESSION RUN 1 1 0 PING"), Err(CommandError::Invalid(_))));
        assert!(matches!(
            parse("SESSION RUN 1 1 0 SESSION END 1"),
            Err(CommandError::Invalid(_))
        ));
        assert_eq!(
            parse("SESSION RUN x 1 0 INCR k").unwrap_err(),
            CommandError::NotAnInteger
        );
        assert_eq!(
            parse("SESSION RUN 1 -1 0 INCR k").unwrap_err(),
            CommandError::NotAnInteger
        );
        assert_eq!(
            parse("SESSION RUN 1 1 0").unwrap_err(),
            CommandError::Arity("session|run".to_string())
        );
        // The wrapped command's own errors, as Redis words them.
        assert_eq!(
            parse("SESSION RUN 1 1 0 INCR").unwrap_err(),
            CommandError::Arity("incr".to_string())
        );
        assert!(matches!(
            parse("SESSION RUN 1 1 0 NOSUCH k"),
            Err(CommandError::Unknown { .. })
        ));
    }
}
