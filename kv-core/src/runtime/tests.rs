use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft_rt::AsyncRuntime;
use openraft_rt::Instant;
use openraft_rt::testing::Suite;
use rand::Rng;

use super::Executor;
use super::SimInstant;
use super::SimRuntime;
use super::TaskGroup;

const HOUR: Duration = Duration::from_secs(3600);

fn at(d: Duration) -> SimInstant {
    SimInstant::ZERO + d
}

#[test]
fn conformance_suite() {
    Suite::<SimRuntime>::test_all();
}

#[test]
fn one_hour_sleep_advances_virtual_time_by_exactly_one_hour() {
    let exec = Executor::new(1);
    let (start, end) = exec.block_on(async {
        let start = SimInstant::now();
        SimRuntime::sleep(HOUR).await;
        (start, SimInstant::now())
    });
    assert_eq!(end - start, HOUR);
    assert_eq!(exec.now(), at(HOUR));
}

#[test]
fn timers_fire_in_deadline_order_then_registration_order() {
    let exec = Executor::new(1);
    let fired = Arc::new(Mutex::new(Vec::new()));
    for (name, ms) in [("c", 30), ("a", 10), ("b1", 20), ("b2", 20)] {
        let fired = fired.clone();
        exec.spawn_in(TaskGroup::ROOT, async move {
            SimRuntime::sleep(Duration::from_millis(ms)).await;
            fired.lock().unwrap().push((name, SimInstant::now()));
        });
    }
    exec.run_until_idle();
    assert_eq!(exec.next_timer_deadline(), Some(at(Duration::from_millis(10))));
    exec.advance_to(at(Duration::from_millis(25)));
    assert_eq!(exec.now(), at(Duration::from_millis(25)));
    exec.run_for(Duration::from_secs(1));
    let ms = |n| at(Duration::from_millis(n));
    assert_eq!(
        *fired.lock().unwrap(),
        [("a", ms(10)), ("b1", ms(20)), ("b2", ms(20)), ("c", ms(30))]
    );
    assert_eq!(exec.next_timer_deadline(), None);
}

#[test]
fn kill_group_drops_its_tasks_and_timers() {
    let exec = Executor::new(1);
    let (node, other) = (TaskGroup(1), TaskGroup(2));
    let woke = Arc::new(AtomicBool::new(false));
    let flag = woke.clone();
    // Spawned from outside any task via `enter_group`, then from inside a task: both in `node`.
    let handle = exec.enter_group(node, || {
        SimRuntime::spawn(async move {
            let child = SimRuntime::spawn(async move {
                SimRuntime::sleep(Duration::from_secs(1)).await;
                flag.store(true, Ordering::SeqCst);
            });
            child.await
        })
    });
    let survivor = exec.spawn_in(other, async { SimRuntime::sleep(Duration::from_secs(2)).await });
    exec.run_until_idle();
    assert_eq!(exec.task_count(), 3);

    assert_eq!(exec.kill_group(node), 2);
    assert_eq!(
        exec.next_timer_deadline(),
        Some(at(Duration::from_secs(2))),
        "killed timers are discarded"
    );
    exec.run_for(HOUR);
    assert!(!woke.load(Ordering::SeqCst));
    let err = exec.block_on(handle).unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(!SimRuntime::is_panic(&err));
    assert!(exec.block_on(survivor).is_ok());
}

/// Three tasks that interleave through sleeps, yields and draws from `thread_rng`.
fn trace(seed: u64) -> (Vec<u64>, Vec<(u64, u64)>) {
    let exec = Executor::new(seed);
    let log = Arc::new(Mutex::new(Vec::new()));
    for id in 0..3u64 {
        let log = log.clone();
        exec.spawn_in(TaskGroup(id), async move {
            for step in 0..4u64 {
                let jitter = SimRuntime::thread_rng().next_u64() % 5;
                SimRuntime::sleep(Duration::from_millis(jitter)).await;
                log.lock().unwrap().push((id, step));
            }
        });
    }
    exec.run_for(Duration::from_secs(1));
    let draws = (0..4).map(|_| exec.rng_u64()).collect();
    let log = log.lock().unwrap().clone();
    (draws, log)
}

#[test]
fn same_seed_replays_the_same_rng_values_and_interleaving() {
    let (_, log) = trace(42);
    assert_eq!(log.len(), 12, "every task finished: {log:?}");
    assert_eq!(trace(42), trace(42));
    assert_ne!(trace(42).0, trace(43).0);
}

#[test]
fn executors_on_one_thread_do_not_interfere() {
    let a = Executor::new(5);
    let b = Executor::new(5);
    let ha = a.spawn_in(TaskGroup::ROOT, async {
        SimRuntime::sleep(Duration::from_secs(10)).await;
        SimInstant::now()
    });
    let hb = b.spawn_in(TaskGroup::ROOT, async {
        SimRuntime::sleep(Duration::from_secs(3)).await;
        SimInstant::now()
    });
    a.run_until_idle();
    assert_eq!(b.next_timer_deadline(), None, "b's task has not run yet");
    b.run_for(Duration::from_secs(3));
    a.run_for(Duration::from_secs(1));
    // Nested: driving `b` from code running with `a` current.
    a.enter(|| b.run_for(Duration::from_secs(1)));
    assert_eq!(
        (a.now(), b.now()),
        (at(Duration::from_secs(1)), at(Duration::from_secs(4)))
    );
    assert_eq!(b.block_on(hb).unwrap(), at(Duration::from_secs(3)));
    assert_eq!(a.block_on(ha).unwrap(), at(Duration::from_secs(10)));
    assert_eq!(
        a.rng_u64(),
        b.rng_u64(),
        "same seed, same stream, untouched by the other"
    );
}

#[test]
#[should_panic(expected = "outside of a running Executor")]
fn now_outside_an_executor_panics() {
    SimInstant::now();
}

#[test]
#[should_panic(expected = "deadlock")]
fn block_on_detects_deadlock() {
    Executor::new(1).block_on(std::future::pending::<()>());
}
