//! The executor: tasks, the ready queue, timers, the virtual clock and the seeded generator.

use std::cell::Cell;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::task::Context;
use std::task::Poll;
use std::task::Wake;
use std::task::Waker;
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::oneshot;

use super::instant::SimInstant;

/// Most polls allowed while virtual time stands still; more means a livelock (a bug).
const MAX_POLLS_PER_INSTANT: u64 = 10_000_000;

/// Ready-queue id of the future passed to [`Executor::block_on`]; spawned tasks start at 1.
const ROOT_FUTURE: TaskId = TaskId(0);

/// Gives every executor a distinct identity, so a timer is only ever cancelled in its own.
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The executor being driven on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

/// A group of tasks that live and die together, such as one simulated process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskGroup(pub u64);

impl TaskGroup {
    /// The group of tasks spawned while no other group is selected.
    pub const ROOT: TaskGroup = TaskGroup(0);
}

/// Identifies a spawned task within its executor, in spawn order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// A task ended without producing its output: it was dropped by [`Executor::kill_group`] or
/// with its executor.
#[derive(Debug, thiserror::Error)]
#[error("{task} was cancelled")]
pub struct JoinError {
    task: TaskId,
}

/// Resolves to a spawned task's output. Dropping it detaches the task.
pub struct JoinHandle<T> {
    task: TaskId,
    output: oneshot::Receiver<T>,
}

impl<T> JoinHandle<T> {
    /// The task this handle waits for.
    pub fn task_id(&self) -> TaskId {
        self.task
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self.task;
        Pin::new(&mut self.output)
            .poll(cx)
            .map(|r| r.map_err(|_| JoinError { task }))
    }
}

/// Task ids to poll, in wake order, each at most once. Wakers may be sent across threads, so
/// this is the one piece of state behind a `Mutex`.
#[derive(Default)]
struct ReadyQueue {
    order: VecDeque<TaskId>,
    queued: BTreeSet<TaskId>,
}

struct TaskWaker {
    task: TaskId,
    ready: Arc<Mutex<ReadyQueue>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        if ready.queued.insert(self.task) {
            ready.order.push_back(self.task);
        }
    }
}

struct Task {
    group: TaskGroup,
    waker: Waker,
    /// `None` while the task is being polled.
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

/// A timer's key: deadline first, then registration order.
pub(super) type TimerKey = (SimInstant, u64);

/// Executor state. Borrows of the `RefCell`s are never held while user code (a poll or a
/// drop of a future) runs, so that code may spawn tasks and arm or cancel timers.
pub(super) struct Shared {
    id: u64,
    seed: u64,
    now: Cell<SimInstant>,
    group: Cell<TaskGroup>,
    driving: Cell<bool>,
    next_task: Cell<u64>,
    next_timer: Cell<u64>,
    tasks: RefCell<BTreeMap<TaskId, Task>>,
    timers: RefCell<BTreeMap<TimerKey, Waker>>,
    ready: Arc<Mutex<ReadyQueue>>,
    rng: RefCell<Xoshiro256PlusPlus>,
}

impl Shared {
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    pub(super) fn now(&self) -> SimInstant {
        self.now.get()
    }

    fn waker(&self, task: TaskId) -> Waker {
        Waker::from(Arc::new(TaskWaker {
            task,
            ready: self.ready.clone(),
        }))
    }

    fn pop_ready(&self) -> Option<TaskId> {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let task = ready.order.pop_front()?;
        ready.queued.remove(&task);
        Some(task)
    }

    fn spawn<F>(&self, group: TaskGroup, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let task = TaskId(self.next_task.get());
        self.next_task.set(task.0 + 1);
        let (tx, output) = oneshot::channel();
        let future = Box::pin(async move {
            // The receiver may be gone: the handle was dropped and the task detached.
            let _ = tx.send(future.await);
        });
        let waker = self.waker(task);
        waker.wake_by_ref();
        self.tasks.borrow_mut().insert(
            task,
            Task {
                group,
                waker,
                future: Some(future),
            },
        );
        JoinHandle { task, output }
    }

    /// Polls one task once; ids of finished or killed tasks are ignored.
    fn poll_task(&self, task: TaskId) {
        let taken = self
            .tasks
            .borrow_mut()
            .get_mut(&task)
            .and_then(|t| Some((t.group, t.waker.clone(), t.future.take()?)));
        let Some((group, waker, mut future)) = taken else {
            return;
        };
        let done = {
            let _group = GroupScope::set(self, group);
            future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready()
        };
        let mut tasks = self.tasks.borrow_mut();
        if done {
            let finished = tasks.remove(&task);
            drop(tasks);
            drop(finished);
        } else if let Some(t) = tasks.get_mut(&task) {
            t.future = Some(future);
        }
    }

    /// Registers (or re-arms) the timer `key` of this executor, or a new one if `key` is `None`.
    pub(super) fn arm_timer(&self, key: Option<TimerKey>, deadline: SimInstant, waker: &Waker) -> TimerKey {
        let key = key.unwrap_or_else(|| {
            let seq = self.next_timer.get();
            self.next_timer.set(seq + 1);
            (deadline, seq)
        });
        self.timers.borrow_mut().insert(key, waker.clone());
        key
    }

    /// Removes a timer; does nothing if it already fired.
    pub(super) fn cancel_timer(&self, key: TimerKey) {
        self.timers.borrow_mut().remove(&key);
    }

    /// Fires the earliest timer due at or before `limit`, moving the clock to its deadline.
    fn fire_next_timer(&self, limit: SimInstant) -> bool {
        let mut timers = self.timers.borrow_mut();
        let Some(entry) = timers.first_entry() else {
            return false;
        };
        if entry.key().0 > limit {
            return false;
        }
        let ((deadline, _), waker) = entry.remove_entry();
        drop(timers);
        self.now.set(self.now.get().max(deadline));
        waker.wake();
        true
    }

    /// Polls ready tasks until none is ready; returns whether the root future was woken.
    fn run_ready(&self) -> bool {
        let mut root_woken = false;
        let mut polls = 0u64;
        while let Some(task) = self.pop_ready() {
            if task == ROOT_FUTURE {
                root_woken = true;
                continue;
            }
            polls += 1;
            assert!(
                polls <= MAX_POLLS_PER_INSTANT,
                "livelock: {MAX_POLLS_PER_INSTANT} task polls at {:?} (seed {})",
                self.now.get(),
                self.seed
            );
            self.poll_task(task);
        }
        root_woken
    }
}

/// Installs an executor as current and selects a spawn group, restoring both on drop.
/// An `exclusive` guard (one that polls tasks) also rejects re-entrant driving.
struct Driving<'a> {
    shared: &'a Rc<Shared>,
    previous: Option<Rc<Shared>>,
    was_driving: bool,
    _group: GroupScope<'a>,
}

impl<'a> Driving<'a> {
    fn new(shared: &'a Rc<Shared>, group: TaskGroup, exclusive: bool) -> Self {
        let was_driving = shared.driving.get();
        assert!(
            !(exclusive && was_driving),
            "re-entrant call: the executor is already running tasks"
        );
        shared.driving.set(was_driving || exclusive);
        Driving {
            shared,
            previous: CURRENT.with(|c| c.replace(Some(shared.clone()))),
            was_driving,
            _group: GroupScope::set(shared, group),
        }
    }
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        self.shared.driving.set(self.was_driving);
        CURRENT.with(|c| *c.borrow_mut() = self.previous.take());
    }
}

/// Sets the group that spawns go to, restoring the previous one on drop.
struct GroupScope<'a> {
    shared: &'a Shared,
    previous: TaskGroup,
}

impl<'a> GroupScope<'a> {
    fn set(shared: &'a Shared, group: TaskGroup) -> Self {
        GroupScope {
            shared,
            previous: shared.group.replace(group),
        }
    }
}

impl Drop for GroupScope<'_> {
    fn drop(&mut self) {
        self.shared.group.set(self.previous);
    }
}

/// Runs `f` on the current executor, panicking if there is none.
#[track_caller]
pub(super) fn with_current<R>(f: impl FnOnce(&Shared) -> R) -> R {
    let shared = CURRENT.with(|c| c.borrow().clone());
    let shared =
        shared.expect("kv-core SimRuntime used outside of a running Executor (use Executor::enter or block_on)");
    f(&shared)
}

/// Runs `f` on the current executor if its id is `executor`.
pub(super) fn with_executor(executor: u64, f: impl FnOnce(&Shared)) {
    // `try_with`: a timer may be dropped during thread teardown.
    if let Ok(Some(shared)) = CURRENT.try_with(|c| c.borrow().clone())
        && shared.id == executor
    {
        f(&shared);
    }
}

/// Spawns into the current executor, in the current group.
#[track_caller]
pub(super) fn spawn_in_current<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    with_current(|s| s.spawn(s.group.get(), future))
}

/// Draws from the current executor's generator.
#[track_caller]
pub(super) fn current_rng_u64() -> u64 {
    with_current(|s| s.rng.borrow_mut().next_u64())
}

/// Owns one simulation's tasks, timers, virtual clock and random generator.
///
/// Scheduling is FIFO in wake order, timers fire in (deadline, registration) order, and
/// nothing depends on wall time, addresses or hash seeds, so runs replay exactly.
pub struct Executor {
    shared: Rc<Shared>,
}

impl Executor {
    /// Creates an executor at virtual time zero whose generator is seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        Executor {
            shared: Rc::new(Shared {
                id: NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed),
                seed,
                now: Cell::new(SimInstant::ZERO),
                group: Cell::new(TaskGroup::ROOT),
                driving: Cell::new(false),
                next_task: Cell::new(ROOT_FUTURE.0 + 1),
                next_timer: Cell::new(0),
                tasks: RefCell::new(BTreeMap::new()),
                timers: RefCell::new(BTreeMap::new()),
                ready: Arc::default(),
                rng: RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed)),
            }),
        }
    }

    /// The seed this executor was created with.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The current virtual time.
    pub fn now(&self) -> SimInstant {
        self.shared.now.get()
    }

    /// Draws from the executor's generator: the stream that [`SimRuntime::thread_rng`]
    /// (one draw per call) also draws from, so simulator and tasks share one sequence.
    ///
    /// [`SimRuntime::thread_rng`]: openraft_rt::AsyncRuntime::thread_rng
    pub fn rng_u64(&self) -> u64 {
        self.shared.rng.borrow_mut().next_u64()
    }

    /// The number of live tasks.
    pub fn task_count(&self) -> usize {
        self.shared.tasks.borrow().len()
    }

    /// Spawns `future` into `group`; it first runs at the next `run_until_idle`.
    pub fn spawn_in<F>(&self, group: TaskGroup, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.shared.spawn(group, future)
    }

    /// Runs `f` with this executor current, spawning into [`TaskGroup::ROOT`].
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        self.enter_group(TaskGroup::ROOT, f)
    }

    /// Runs `f` with this executor current, so that code like `Raft::new` may spawn: its
    /// tasks go to `group`. Tasks run later, when the executor is driven.
    pub fn enter_group<R>(&self, group: TaskGroup, f: impl FnOnce() -> R) -> R {
        let _driving = Driving::new(&self.shared, group, false);
        f()
    }

    /// Drops every task of `group` now, as a process crash would, and returns how many there
    /// were. Their timers are cancelled and their [`JoinHandle`]s resolve to [`JoinError`].
    pub fn kill_group(&self, group: TaskGroup) -> usize {
        let _driving = Driving::new(&self.shared, TaskGroup::ROOT, false);
        let killed: Vec<Task> = self
            .shared
            .tasks
            .borrow_mut()
            .extract_if(.., |_, t| t.group == group)
            .map(|(_, t)| t)
            .collect();
        let count = killed.len();
        drop(killed);
        count
    }

    /// Polls ready tasks, in wake order, until none is ready. Virtual time does not move.
    ///
    /// # Panics
    ///
    /// If tasks keep waking each other without time moving (a livelock), or on re-entry.
    pub fn run_until_idle(&self) {
        let _driving = Driving::new(&self.shared, TaskGroup::ROOT, true);
        self.shared.run_ready();
    }

    /// The deadline of the earliest armed timer.
    pub fn next_timer_deadline(&self) -> Option<SimInstant> {
        self.shared
            .timers
            .borrow()
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    /// Runs ready tasks, then fires every timer due by `t` in (deadline, registration) order,
    /// running ready tasks after each, and leaves the clock at `t` (it never moves backwards).
    pub fn advance_to(&self, t: SimInstant) {
        let _driving = Driving::new(&self.shared, TaskGroup::ROOT, true);
        self.shared.run_ready();
        while self.shared.fire_next_timer(t) {
            self.shared.run_ready();
        }
        self.shared.now.set(self.now().max(t));
    }

    /// [`Self::advance_to`] `now() + d`.
    pub fn run_for(&self, d: Duration) {
        self.advance_to(self.now() + d);
    }

    /// Drives `future` (which need not be `Send`) and all tasks until `future` completes,
    /// moving virtual time to the next timer whenever nothing is ready.
    ///
    /// # Panics
    ///
    /// On deadlock: `future` is pending, no task is ready and no timer is armed.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _driving = Driving::new(&self.shared, self.shared.group.get(), true);
        let mut future = pin!(future);
        let waker = self.shared.waker(ROOT_FUTURE);
        let mut cx = Context::from_waker(&waker);
        let (mut root_woken, mut polls) = (true, 0u64);
        loop {
            if root_woken {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                polls += 1;
                assert!(
                    polls <= MAX_POLLS_PER_INSTANT,
                    "livelock: block_on future polled {polls} times at {:?} (seed {})",
                    self.now(),
                    self.seed()
                );
            }
            root_woken = self.shared.run_ready();
            if !root_woken {
                assert!(
                    self.shared.fire_next_timer(SimInstant::MAX),
                    "deadlock: block_on future pending with no ready task and no timer at {:?} (seed {})",
                    self.now(),
                    self.seed()
                );
                polls = 0;
            }
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("seed", &self.seed())
            .field("now", &self.now())
            .field("tasks", &self.task_count())
            .field("timers", &self.shared.timers.borrow().len())
            .finish()
    }
}

impl Drop for Executor {
    /// Drops the tasks with the executor current, so their timers and drop code see it.
    fn drop(&mut self) {
        let _driving = Driving::new(&self.shared, TaskGroup::ROOT, false);
        let tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
        drop(tasks);
    }
}
