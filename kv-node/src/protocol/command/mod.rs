//! The command table at work: from a client's arguments to an [`Action`], and `COMMAND`'s
//! answers about the table.
//!
//! - [`table`]: every command and subcommand, with arity, flags, key positions and docs;
//! - [`data`], [`admin`] and [`session`]: the parsers the table names (data commands;
//!   connection, server and cluster commands; client sessions);
//! - [`action`]: what a parsed command asks for, and [`CommandError`].
//!
//! [`parse`] looks the name up, checks the arity against the table (so no parser repeats it),
//! descends into subcommands, and calls the parser.

mod action;
mod admin;
mod data;
mod pubsub;
mod session;
mod spec;
mod table;
mod transaction;

pub use action::Action;
pub use action::CommandError;
pub use action::CursorLookup;
pub use action::Introspection;
pub use action::KillFilter;
pub use action::PubSubAction;
pub use spec::Flag;
pub use spec::Spec;

use super::reply::Reply;

/// Every command the client port accepts, in name order.
pub fn commands() -> &'static [Spec] {
    table::COMMANDS
}

/// The table entry of a command (by name, any case): a binary search of the table, which is
/// in name order, comparing without regard to ASCII case and without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let lower = |b: &u8| b.to_ascii_lowercase();
    let index = table::COMMANDS
        .binary_search_by(|spec| spec.name.as_bytes().iter().map(lower).cmp(name.iter().map(lower)))
        .ok()?;
    Some(&table::COMMANDS[index])
}

/// The table entry that will run `args`: the command, or its subcommand if it has them.
pub fn resolve(args: &[Vec<u8>]) -> Result<&'static Spec, CommandError> {
    let spec = lookup(&args[0]).ok_or_else(|| unknown(args))?;
    if !spec.arity_allows(args.len()) {
        return Err(CommandError::Arity(spec.name.to_string()));
    }
    if spec.subcommands.is_empty() || (args.len() == 1 && spec.parse.is_some()) {
        return Ok(spec);
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let found = spec
        .subcommands
        .iter()
        .find(|s| s.name.split_once('|').is_some_and(|(_, name)| name == sub));
    let Some(found) = found else {
        return Err(CommandError::UnknownSubcommand {
            command: spec.name.to_ascii_uppercase(),
            sub: String::from_utf8_lossy(&args[1]).into_owned(),
        });
    };
    if !found.arity_allows(args.len()) {
        return Err(CommandError::Arity(found.name.to_string()));
    }
    Ok(found)
}

/// Redis's `unknown command` error: the name cut at 128 bytes, then quoted arguments while
/// fewer than 128 bytes of them are written, each cut to what is left of those 128.
fn unknown(args: &[Vec<u8>]) -> CommandError {
    const MAX: usize = 128;
    let mut quoted = Vec::new();
    for arg in &args[1..] {
        if quoted.len() >= MAX {
            break;
        }
        let room = MAX - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&arg[..arg.len().min(room)]);
        quoted.extend_from_slice(b"' ");
    }
    CommandError::Unknown {
        name: String::from_utf8_lossy(&args[0][..args[0].len().min(MAX)]).into_owned(),
        args: String::from_utf8_lossy(&quoted).into_owned(),
    }
}

/// Turns arguments (the command name first) into an action. `cursor_key` resolves a SCAN
/// cursor to the last key the previous call returned.
pub fn parse(args: &[Vec<u8>], cursor_key: &CursorLookup) -> Result<Action, CommandError> {
    if let [name, sub] = args
        && sub.eq_ignore_ascii_case(b"help")
        && let Some(container) = lookup(name).filter(|s| !s.subcommands.is_empty())
    {
        return Ok(Action::Reply(help(container)));
    }
    let spec = resolve(args)?;
    let parse = spec.parse.expect("every command without subcommands has a parser");
    parse(args, cursor_key)
}

/// `CONTAINER HELP`: one line per subcommand, from the table (as Redis answers, an array of
/// status lines).
fn help(container: &Spec) -> Reply {
    let name = container.name.to_ascii_uppercase();
    let mut lines = vec![format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    for sub in container.subcommands {
        let sub_name = sub
            .name
            .split_once('|')
            .map_or(sub.name, |(_, s)| s)
            .to_ascii_uppercase();
        lines.push(sub_name);
        lines.push(format!("    {}", sub.summary));
    }
    lines.push("HELP".to_string());
    lines.push("    Print this help.".to_string());
    Reply::Array(lines.into_iter().map(Reply::Simple).collect())
}

/// The answer to `COMMAND ...`.
pub fn introspect(what: &Introspection) -> Reply {
    let named =
        |names: &[String]| -> Vec<Option<&'static Spec>> { names.iter().map(|n| lookup(n.as_bytes())).collect() };
    match what {
        Introspection::All => Reply::Array(commands().iter().map(info).collect()),
        Introspection::Info(names) => Reply::Array(
            named(names)
                .into_iter()
                .map(|spec| spec.map_or(Reply::Nil, info))
                .collect(),
        ),
        Introspection::Count => Reply::Integer(commands().len() as i64),
        Introspection::List => Reply::Array(commands().iter().map(|s| Reply::text(s.name)).collect()),
        Introspection::Docs(names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                commands().iter().collect()
            } else {
                named(names).into_iter().flatten().collect()
            };
            Reply::Map(specs.into_iter().map(|s| (Reply::text(s.name), docs(s))).collect())
        }
    }
}

/// A command's `COMMAND INFO` entry, as Redis 7 lays it out: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specifications, subcommands.
fn info(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    let mut categories = vec![format!("@{}", spec.group)];
    if spec.has(Flag::Write) {
        categories.push("@write".to_string());
    }
    if spec.has(Flag::ReadOnly) {
        categories.push("@read".to_string());
    }
    if spec.has(Flag::Admin) {
        categories.push("@admin".to_string());
    }
    categories.push(if spec.has(Flag::Fast) { "@fast" } else { "@slow" }.to_string());
    Reply::Array(vec![
        Reply::text(spec.name),
        Reply::Integer(spec.arity),
        Reply::Array(
            spec.flags
                .iter()
                .map(|f| Reply::Simple(f.as_str().to_string()))
                .collect(),
        ),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        Reply::Array(categories.into_iter().map(Reply::Simple).collect()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(spec.subcommands.iter().map(info).collect()),
    ])
}

/// A command's `COMMAND DOCS` entry: summary, since, group, and its subcommands' docs.
fn docs(spec: &Spec) -> Reply {
    let mut fields = vec![
        (Reply::text("summary"), Reply::text(spec.summary)),
        (Reply::text("since"), Reply::text("0.1.0")),
        (Reply::text("group"), Reply::text(spec.group)),
    ];
    if !spec.subcommands.is_empty() {
        fields.push((
            Reply::text("subcommands"),
            Reply::Map(
                spec.subcommands
                    .iter()
                    .map(|s| (Reply::text(s.name), docs(s)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(fields)
}

#[cfg(test)]
mod tests {
    use kv_core::command::Command;
    use kv_core::command::Key;
    use kv_core::command::SetCondition;
    use kv_core::wire::Op;

    use super::*;
    use crate::protocol::render::Shape;

    fn args(text: &str) -> Vec<Vec<u8>> {
        text.split(' ').map(|s| s.as_bytes().to_vec()).collect()
    }

    fn no_cursor(_: &[u8]) -> Result<Option<Key>, CommandError> {
        Ok(None)
    }

    fn error(text: &str) -> String {
        parse(&args(text), &no_cursor).unwrap_err().to_string()
    }

    #[test]
    fn redis_style_errors() {
        assert_eq!(
            error("FOO a b"),
            "unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(error("GET"), "wrong number of arguments for 'get' command");
        assert_eq!(error("SET k v NX XX"), "syntax error");
        assert_eq!(error("SET k v EX 0"), "invalid expire time in 'set' command");
        assert_eq!(error("SET k v EX x"), "value is not an integer or out of range");
        assert_eq!(error("SET k v EX 1 KEEPTTL"), "syntax error");
        assert_eq!(error("SELECT 1"), "DB index is out of range");
        assert_eq!(error("INCRBY k +1"), "value is not an integer or out of range");
        assert_eq!(error("RAFT NOPE"), "unknown subcommand 'NOPE'. Try RAFT HELP.");
        assert_eq!(error("MSET a 1 b"), "wrong number of arguments for 'mset' command");
        assert_eq!(
            error("CLIENT SETNAME"),
            "wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            error("RAFT PROMOTE"),
            "wrong number of arguments for 'raft|promote' command"
        );
        assert_eq!(
            error("CONFIG GET"),
            "wrong number of arguments for 'config|get' command"
        );
    }

    #[test]
    fn set_options() {
        let Action::Data {
            op: Op::Write { command, ttl_ms },
            shape: Shape::Set { get: true },
        } = parse(&args("set k v nx get px 1500"), &no_cursor).unwrap()
        else {
            panic!("not a set");
        };
        assert_eq!(ttl_ms, Some(1500));
        assert!(matches!(
            command,
            Command::Set {
                condition: SetCondition::IfAbsent,
                ..
            }
        ));
    }

    #[test]
    fn cas_forms() {
        let cas = |text: &str| match parse(&args(text), &no_cursor) {
            Ok(Action::Data {
                op:
                    Op::Write {
                        command: Command::CompareAndSwap { expected, new, .. },
                        ..
                    },
                ..
            }) => Ok((expected, new)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            cas("CAS k IFEQ a SET b"),
            Ok((Some(b"a".to_vec()), Some(b"b".to_vec())))
        );
        assert_eq!(cas("CAS k IFABSENT DEL"), Ok((None, None)));
        assert_eq!(cas("CAS k IFEQ a"), Err(CommandError::Arity("cas".to_string())));
        assert_eq!(cas("CAS k IFABSENT DEL x"), Err(CommandError::Syntax));
    }

    #[test]
    fn prefix_ranges() {
        use std::ops::Bound;

        use super::data::prefix_range;
        assert_eq!(
            prefix_range(b"ab", None),
            (Bound::Included(b"ab".to_vec()), Bound::Excluded(b"ac".to_vec()))
        );
        assert_eq!(
            prefix_range(b"a\xff", Some(b"a\xff1".to_vec())),
            (Bound::Excluded(b"a\xff1".to_vec()), Bound::Excluded(b"b".to_vec()))
        );
        assert_eq!(prefix_range(b"", None), (Bound::Unbounded, Bound::Unbounded));
        assert_eq!(
            prefix_range(b"b", Some(b"a".to_vec())).0,
            Bound::Included(b"b".to_vec())
        );
    }

    #[test]
    fn the_table_is_sorted_and_every_entry_parses() {
        let names: Vec<&str> = commands().iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "the table is kept in name order, without duplicates");
        for spec in commands() {
            let upper = spec.name.to_ascii_uppercase();
            assert!(lookup(upper.as_bytes()).is_some_and(|found| std::ptr::eq(found, spec)));
            assert!(lookup(spec.name.as_bytes()).is_some_and(|found| std::ptr::eq(found, spec)));
            assert!(
                spec.parse.is_some() || !spec.subcommands.is_empty(),
                "{} has neither a parser nor subcommands",
                spec.name
            );
            for sub in spec.subcommands {
                assert!(sub.parse.is_some(), "{} has no parser", sub.name);
                assert!(sub.name.starts_with(&format!("{}|", spec.name)), "{}", sub.name);
            }
        }
    }

    /// Dispatch goes through the table only: every entry is accepted under its name, and a
    /// name that is not in the table is unknown. So `COMMAND COUNT` counts what is accepted.
    #[test]
    fn the_table_is_what_the_port_accepts() {
        for spec in commands() {
            let mut call = vec![spec.name.as_bytes().to_vec()];
            if let Some(sub) = spec.subcommands.first() {
                call.push(sub.name.split_once('|').unwrap().1.as_bytes().to_vec());
            }
            let result = parse(&call, &no_cursor);
            assert!(
                !matches!(
                    result,
                    Err(CommandError::Unknown { .. } | CommandError::UnknownSubcommand { .. })
                ),
                "{} is in the table but not accepted: {result:?}",
                spec.name
            );
        }
        for name in ["hset", "sadd", "lpush"] {
            assert!(matches!(
                parse(&args(name), &no_cursor),
                Err(CommandError::Unknown { .. })
            ));
        }
        assert_eq!(commands().len(), 75);
    }

    #[test]
    fn command_introspection_comes_from_the_table() {
        assert_eq!(
            introspect(&Introspection::Count),
            Reply::Integer(commands().len() as i64)
        );
        let Reply::Array(get) = introspect(&Introspection::Info(vec!["get".to_string(), "nope".to_string()])) else {
            panic!("COMMAND INFO answers an array");
        };
        assert_eq!(get[1], Reply::Nil);
        let Reply::Array(entry) = &get[0] else {
            panic!("an entry is an array");
        };
        assert_eq!(entry[0], Reply::text("get"));
        assert_eq!(entry[1], Reply::Integer(2));
        assert_eq!(entry.len(), 10);
        let Action::Introspect(what) = parse(&args("COMMAND DOCS set"), &no_cursor).unwrap() else {
            panic!("COMMAND DOCS is introspection");
        };
        let Reply::Map(docs) = introspect(&what) else {
            panic!("COMMAND DOCS answers a map");
        };
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].0, Reply::text("set"));
    }
}
