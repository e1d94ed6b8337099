//! Active expiry as the store sees it: `Store::next_expiry` names the earliest expiry, and
//! `Command::ExpireDue` removes what is due (raising `expired`) and changes nothing else: a
//! `WATCH` guard aborts only for a key that actually expired.

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::TxOp;
use kv_core::command::WatchGuard;
use kv_core::command::Write;
use kv_core::store::Event;
use kv_core::store::Store;

fn set(key: &str, expiry: Expiry) -> Command {
    Command::Set {
        key: key.into(),
        value: b"v".to_vec(),
        condition: SetCondition::Always,
        expiry,
    }
}

fn w(at_ms: u64, command: Command) -> Write {
    Write { at_ms, command }
}

/// A transaction that reads `read`, guarded by `keys` unchanged since `since`.
fn guarded(since: u64, keys: &[&str], read: &str) -> Command {
    Command::Transaction {
        guard: Some(WatchGuard {
            since,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }),
        ops: vec![TxOp::Read(Query::Get { key: read.into() })],
    }
}

fn expired(revision: u64, key: &str) -> Event {
    Event::Key {
        revision,
        key: key.into(),
        value: None,
        event: "expired",
    }
}

#[test]
fn expire_due_removes_only_what_is_due_and_next_expiry_follows() {
    let mut s = Store::new(Limits::default());
    s.record_events(true);
    assert_eq!(s.next_expiry(), None);
    s.apply(1, &w(10, set("plain", Expiry::Never)));
    assert_eq!(s.next_expiry(), None, "a key without expiry is not one");
    s.apply(2, &w(10, set("late", Expiry::At(200))));
    s.apply(3, &w(10, set("early", Expiry::At(100))));
    assert_eq!(s.next_expiry(), Some(100));
    s.take_events();

    // Not yet due: the write has its revision and moves the clock, and nothing else happens.
    assert_eq!(s.apply(4, &w(99, Command::ExpireDue)), Response::Ok);
    assert_eq!(s.take_events(), Vec::<Event>::new());
    assert_eq!((s.revision(), s.clock_ms(), s.len()), (4, 99, 3));
    assert_eq!(s.next_expiry(), Some(100));

    // Due (at its time exactly): removed, with an `expired` event at this write's revision.
    assert_eq!(s.apply(5, &w(100, Command::ExpireDue)), Response::Ok);
    assert_eq!(s.take_events(), vec![expired(5, "early")]);
    assert_eq!(s.next_expiry(), Some(200));
    assert_eq!(s.len(), 2);

    // WATCH: the ticks at 4 and 5 changed neither `plain` nor `late`, so a guard from before
    // them holds; `early` expired at 5, so a guard on it from before aborts.
    let read = |r: Response| match r {
        Response::Transaction(answers) => answers.is_some(),
        other => panic!("not a transaction answer: {other:?}"),
    };
    assert!(read(s.apply(6, &w(150, guarded(3, &["plain", "late"], "plain")))));
    assert!(!read(s.apply(7, &w(150, guarded(4, &["early"], "plain")))));
    assert!(read(s.apply(8, &w(150, guarded(5, &["early"], "plain")))));
    s.take_events();

    // A clock that goes back (a new leader's) never brings a key back or expires early.
    assert_eq!(s.apply(9, &w(120, Command::ExpireDue)), Response::Ok);
    assert_eq!((s.clock_ms(), s.next_expiry()), (150, Some(200)));
    assert_eq!(s.apply(10, &w(250, Command::ExpireDue)), Response::Ok);
    assert_eq!(s.take_events(), vec![expired(10, "late")]);
    assert_eq!(s.next_expiry(), None);
    assert_eq!(s.len(), 1);

    // The tick leaves nothing behind in a snapshot but the clock and the revision.
    s.record_events(false);
    let restored = Store::from_bytes(&s.to_bytes(), Limits::default()).unwrap();
    assert_eq!(restored, s);
    assert_eq!(restored.next_expiry(), None);
}

#[test]
fn next_expiry_follows_persist_overwrite_and_delete() {
    let mut s = Store::new(Limits::default());
    s.apply(1, &w(0, set("a", Expiry::At(50))));
    s.apply(2, &w(0, set("b", Expiry::At(70))));
    assert_eq!(s.next_expiry(), Some(50));
    s.apply(
        3,
        &w(
            0,
            Command::SetExpiry {
                key: b"a".to_vec(),
                at_ms: None,
            },
        ),
    );
    assert_eq!(s.next_expiry(), Some(70), "PERSIST takes a key out");
    s.apply(4, &w(0, set("b", Expiry::Never)));
    assert_eq!(s.next_expiry(), None, "a plain SET clears the expiry");
    s.apply(5, &w(0, set("c", Expiry::At(30))));
    s.apply(
        6,
        &w(
            0,
            Command::Delete {
                keys: vec![b"c".to_vec()],
            },
        ),
    );
    assert_eq!(s.next_expiry(), None, "a deleted key is not due");
}
