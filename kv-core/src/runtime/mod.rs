//! A deterministic, single-threaded [`AsyncRuntime`] for simulation.
//!
//! [`SimRuntime`] is the runtime openraft runs on inside kv-core. Every task lives in an
//! [`Executor`] owned by the simulation, time is the executor's virtual clock ([`SimInstant`])
//! and randomness is the executor's seeded generator, so one seed plus one sequence of driver
//! calls always replays the same run.
//!
//! # Driving
//!
//! ```
//! use std::time::Duration;
//!
//! use kv_core::runtime::{Executor, SimInstant, SimRuntime, TaskGroup};
//! use openraft_rt::AsyncRuntime;
//!
//! let exec = Executor::new(7);
//! let node = TaskGroup(1);
//! let handle = exec.enter_group(node, || {
//!     SimRuntime::spawn(async {
//!         SimRuntime::sleep(Duration::from_secs(3600)).await;
//!         42
//!     })
//! });
//! exec.run_for(Duration::from_secs(3600)); // takes no wall time
//! assert_eq!(exec.now(), SimInstant::from_nanos(3_600_000_000_000));
//! assert_eq!(exec.block_on(handle).unwrap(), 42);
//! ```
//!
//! # The current executor
//!
//! [`AsyncRuntime`]'s methods take no `self`, so they reach the executor through a thread-local
//! slot that the executor fills only while it is being driven (`run_until_idle`, `advance_to`,
//! `block_on`, `enter`, `kill_group`) and restores afterwards. Executors therefore do not
//! interfere, whether they are used one after another, interleaved on one thread, or on
//! parallel test threads. Calling a [`SimRuntime`] function outside of a driven executor panics.
//!
//! # Task groups
//!
//! Each task belongs to a [`TaskGroup`] (a simulated process). A task spawned from a task joins
//! its parent's group; code run by [`Executor::enter_group`] spawns into the given group.
//! [`Executor::kill_group`] drops every task of a group at once, which deregisters their timers
//! and makes their [`JoinHandle`]s resolve to a [`JoinError`].
//!
//! # Module layering
//!
//! The submodules import each other in one direction only, so each can be read (and changed)
//! knowing only what is below it:
//!
//! ```text
//! time      SimInstant::now, Sleep, Timeout: ask the current executor for the time and timers
//!   ↓
//! executor  tasks, the ready queue, timers, the clock, the seeded generator
//!   ↓
//! instant   SimInstant and its arithmetic: a plain value
//!
//! sync, watch   channels and a mutex over tokio's; they import no sibling
//! ```
//!
//! This file sits above them all: it re-exports them and wires them into [`SimRuntime`]. A
//! submodule's `super::Name` counts as an import of the module that defines `Name`, so a
//! re-export cannot hide a circle either. `tests::runtime_modules_import_each_other_in_one_direction`
//! checks all of this.
//!
//! # Panics
//!
//! A panicking task is a bug in the simulation: the panic propagates out of the call that
//! drives the executor instead of being turned into a [`JoinError`].

mod executor;
mod instant;
mod sync;
#[cfg(test)]
mod tests;
mod time;
mod watch;

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use openraft_rt::AsyncRuntime;
use openraft_rt::Instant;
use openraft_rt::OptionalSend;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use self::executor::Executor;
pub use self::executor::JoinError;
pub use self::executor::JoinHandle;
pub use self::executor::TaskGroup;
pub use self::executor::TaskId;
pub use self::instant::SimInstant;
pub use self::sync::SimMpsc;
pub use self::sync::SimMpscReceiver;
pub use self::sync::SimMpscSender;
pub use self::sync::SimMpscWeakSender;
pub use self::sync::SimMutex;
pub use self::sync::SimOneshot;
pub use self::sync::SimOneshotSender;
pub use self::time::Sleep;
pub use self::time::Timeout;
pub use self::time::TimeoutError;
pub use self::watch::SimWatch;
pub use self::watch::SimWatchReceiver;
pub use self::watch::SimWatchSender;

/// The deterministic [`AsyncRuntime`]: all of its functions act on the current [`Executor`].
///
/// A `SimRuntime` value (made by [`AsyncRuntime::new`] or [`From<Executor>`]) owns an executor
/// and is what [`AsyncRuntime::block_on`] drives.
pub struct SimRuntime {
    executor: Executor,
}

impl From<Executor> for SimRuntime {
    fn from(executor: Executor) -> Self {
        SimRuntime { executor }
    }
}

impl fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRuntime").field("executor", &self.executor).finish()
    }
}

impl AsyncRuntime for SimRuntime {
    type JoinError = JoinError;
    type JoinHandle<T: OptionalSend + 'static> = JoinHandle<T>;
    type Sleep = Sleep;
    type Instant = SimInstant;
    type TimeoutError = TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    /// A fresh generator seeded with one draw from the executor's generator.
    type ThreadLocalRng = Xoshiro256PlusPlus;

    fn spawn<T>(future: T) -> JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        executor::spawn_in_current(future)
    }

    fn sleep(duration: Duration) -> Sleep {
        Sleep::until(SimInstant::now() + duration)
    }

    fn sleep_until(deadline: SimInstant) -> Sleep {
        Sleep::until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Timeout<F> {
        Timeout::new(Self::sleep(duration), future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: SimInstant, future: F) -> Timeout<F> {
        Timeout::new(Sleep::until(deadline), future)
    }

    fn is_panic(_join_error: &JoinError) -> bool {
        // Panics propagate out of the executor; a `JoinError` always means "cancelled".
        false
    }

    fn thread_rng() -> Xoshiro256PlusPlus {
        use rand::SeedableRng;
        Xoshiro256PlusPlus::seed_from_u64(executor::current_rng_u64())
    }

    type Mpsc = SimMpsc;
    type Watch = SimWatch;
    type Oneshot = SimOneshot;
    type Mutex<T: OptionalSend + 'static> = SimMutex<T>;

    /// A runtime over a fresh executor with seed 0; `threads` is ignored.
    fn new(_threads: usize) -> Self {
        SimRuntime::from(Executor::new(0))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.executor.block_on(future)
    }

    /// Runs `f` inline, at the call: kv-core starts no threads.
    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::future::ready(Ok(f()))
    }
}
