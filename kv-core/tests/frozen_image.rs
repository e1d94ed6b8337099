//! A snapshot's image is encoded from a frozen view of the store (`Store::freeze`) on another
//! thread while writes go on: the image is the one the store would have given when frozen,
//! byte for byte, whatever the writes did meanwhile (rewrote, replaced, deleted or flushed the
//! records it lists, or dropped the store).

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::Write;
use kv_core::store::Store;

fn set(key: u64, value: &[u8], expiry: Expiry) -> Command {
    Command::Set {
        key: format!("key:{key:06}").into_bytes(),
        value: value.to_vec(),
        condition: SetCondition::Always,
        expiry,
    }
}

/// A store of 20,000 keys at revision 20,000, some with an expiry, a few deleted.
fn filled() -> Store {
    let mut store = Store::new(Limits::default());
    for i in 0..20_000u64 {
        let expiry = if i % 7 == 0 {
            Expiry::At(1_000_000 + i)
        } else {
            Expiry::Never
        };
        store.apply(
            i + 1,
            &Write {
                at_ms: 1,
                command: set(i, &[b'a'; 16], expiry),
            },
        );
    }
    let keys = (0..20_000)
        .step_by(1000)
        .map(|i| format!("key:{i:06}").into_bytes())
        .collect();
    store.apply(
        20_001,
        &Write {
            at_ms: 2,
            command: Command::Delete { keys },
        },
    );
    store
}

/// Writes of every kind over the frozen records, from `revision` on: same-size values (which
/// an unpinned store rewrites in place), other sizes, expiries, deletions.
fn churn(store: &mut Store, revision: u64) -> u64 {
    let mut revision = revision;
    for i in 0..20_000u64 {
        revision += 1;
        let command = match i % 4 {
            0 => set(i, &[b'b'; 16], Expiry::Never),
            1 => set(i, &[b'c'; 40], Expiry::Never),
            2 => set(i, &[b'd'; 16], Expiry::At(5_000_000)),
            _ => Command::Delete {
                keys: vec![format!("key:{i:06}").into_bytes()],
            },
        };
        store.apply(revision, &Write { at_ms: 3, command });
    }
    revision
}

#[test]
fn an_image_encoded_while_writes_go_on_is_the_image_at_the_freeze() {
    let mut store = filled();
    let expected = store.to_bytes();
    let frozen = store.freeze();
    let encoder = std::thread::spawn(move || (0..5).map(|_| frozen.to_bytes()).collect::<Vec<_>>());
    let revision = churn(&mut store, 20_001);
    let images = encoder.join().unwrap();
    assert!(
        images.iter().all(|image| *image == expected),
        "an image differs from the store's at the freeze"
    );

    // The store went on as if never frozen; once the view is gone, it rewrites in place again.
    let mut unfrozen = filled();
    churn(&mut unfrozen, 20_001);
    assert_eq!(store, unfrozen);
    churn(&mut store, revision);
    churn(&mut unfrozen, revision);
    assert_eq!(store, unfrozen);
    let get = |store: &Store| {
        store.query(
            &Query::Get {
                key: b"key:000002".to_vec(),
            },
            4,
        )
    };
    assert_eq!(get(&store), Response::Value(Some(vec![b'd'; 16])));
}

#[test]
fn a_view_outlives_a_flush_and_the_store_itself() {
    let mut store = filled();
    let expected = store.to_bytes();
    let (flushed, dropped) = (store.freeze(), store.freeze());
    store.apply(
        20_002,
        &Write {
            at_ms: 3,
            command: Command::Clear,
        },
    );
    assert_eq!(flushed.to_bytes(), expected);
    drop(store);
    assert_eq!(dropped.to_bytes(), expected);
    let restored = Store::from_bytes(&dropped.to_bytes(), Limits::default()).unwrap();
    assert_eq!(restored.len(), 19_980);
}
