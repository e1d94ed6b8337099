//! Channels and the async mutex: thin wrappers over `tokio::sync`, which needs no runtime and
//! only wakes wakers, so it is as deterministic as the executor polling it.

use std::future::Future;

use futures_util::TryFutureExt;
use openraft_rt::OptionalSend;
use openraft_rt::OptionalSync;
use openraft_rt::mpsc;
use openraft_rt::mutex;
use openraft_rt::oneshot;
use openraft_rt::watch;
use tokio::sync::mpsc as tokio_mpsc;
use tokio::sync::oneshot as tokio_oneshot;
use tokio::sync::watch as tokio_watch;

/// Bounded MPSC channels.
pub struct SimMpsc;

/// Sending half of a [`SimMpsc`] channel.
pub struct SimMpscSender<T>(tokio_mpsc::Sender<T>);

/// Receiving half of a [`SimMpsc`] channel.
pub struct SimMpscReceiver<T>(tokio_mpsc::Receiver<T>);

/// A sender that does not keep a [`SimMpsc`] channel open.
pub struct SimMpscWeakSender<T>(tokio_mpsc::WeakSender<T>);

impl<T> Clone for SimMpscSender<T> {
    fn clone(&self) -> Self {
        SimMpscSender(self.0.clone())
    }
}

impl<T> Clone for SimMpscWeakSender<T> {
    fn clone(&self) -> Self {
        SimMpscWeakSender(self.0.clone())
    }
}

impl mpsc::Mpsc for SimMpsc {
    type Sender<T: OptionalSend> = SimMpscSender<T>;
    type Receiver<T: OptionalSend> = SimMpscReceiver<T>;
    type WeakSender<T: OptionalSend> = SimMpscWeakSender<T>;

    fn channel<T: OptionalSend>(buffer: usize) -> (SimMpscSender<T>, SimMpscReceiver<T>) {
        let (tx, rx) = tokio_mpsc::channel(buffer);
        (SimMpscSender(tx), SimMpscReceiver(rx))
    }
}

impl<T: OptionalSend> mpsc::MpscSender<SimMpsc, T> for SimMpscSender<T> {
    fn send(&self, msg: T) -> impl Future<Output = Result<(), mpsc::SendError<T>>> + OptionalSend {
        self.0.send(msg).map_err(|e| mpsc::SendError(e.0))
    }

    fn downgrade(&self) -> SimMpscWeakSender<T> {
        SimMpscWeakSender(self.0.downgrade())
    }
}

impl<T: OptionalSend> mpsc::MpscReceiver<T> for SimMpscReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + OptionalSend {
        self.0.recv()
    }

    fn try_recv(&mut self) -> Result<T, mpsc::TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            tokio_mpsc::error::TryRecvError::Empty => mpsc::TryRecvError::Empty,
            tokio_mpsc::error::TryRecvError::Disconnected => mpsc::TryRecvError::Disconnected,
        })
    }
}

impl<T: OptionalSend> mpsc::MpscWeakSender<SimMpsc, T> for SimMpscWeakSender<T> {
    fn upgrade(&self) -> Option<SimMpscSender<T>> {
        self.0.upgrade().map(SimMpscSender)
    }
}

/// Watch channels: one latest value, observed by many receivers.
pub struct SimWatch;

/// Sending half of a [`SimWatch`] channel.
pub struct SimWatchSender<T>(tokio_watch::Sender<T>);

/// Receiving half of a [`SimWatch`] channel.
pub struct SimWatchReceiver<T>(tokio_watch::Receiver<T>);

impl<T> Clone for SimWatchSender<T> {
    fn clone(&self) -> Self {
        SimWatchSender(self.0.clone())
    }
}

impl<T> Clone for SimWatchReceiver<T> {
    fn clone(&self) -> Self {
        SimWatchReceiver(self.0.clone())
    }
}

impl watch::Watch for SimWatch {
    type Sender<T: OptionalSend + OptionalSync> = SimWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = SimWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = tokio_watch::Ref<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (SimWatchSender<T>, SimWatchReceiver<T>) {
        let (tx, rx) = tokio_watch::channel(init);
        (SimWatchSender(tx), SimWatchReceiver(rx))
    }
}

impl<T: OptionalSend + OptionalSync> watch::WatchSender<SimWatch, T> for SimWatchSender<T> {
    fn send(&self, value: T) -> Result<(), watch::SendError<T>> {
        self.0.send(value).map_err(|e| watch::SendError(e.0))
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        self.0.send_if_modified(modify)
    }

    fn borrow_watched(&self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow()
    }

    fn subscribe(&self) -> SimWatchReceiver<T> {
        SimWatchReceiver(self.0.subscribe())
    }
}

impl<T: OptionalSend + OptionalSync> watch::WatchReceiver<SimWatch, T> for SimWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), watch::RecvError> {
        self.0.changed().await.map_err(|_| watch::RecvError(()))
    }

    fn borrow_watched(&self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow()
    }

    fn borrow_and_update(&mut self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow_and_update()
    }
}

/// One-shot channels.
pub struct SimOneshot;

/// Sending half of a [`SimOneshot`] channel.
pub struct SimOneshotSender<T>(tokio_oneshot::Sender<T>);

impl oneshot::Oneshot for SimOneshot {
    type Sender<T: OptionalSend> = SimOneshotSender<T>;
    type Receiver<T: OptionalSend> = tokio_oneshot::Receiver<T>;
    type ReceiverError = tokio_oneshot::error::RecvError;

    fn channel<T: OptionalSend>() -> (SimOneshotSender<T>, tokio_oneshot::Receiver<T>) {
        let (tx, rx) = tokio_oneshot::channel();
        (SimOneshotSender(tx), rx)
    }
}

impl<T: OptionalSend> oneshot::OneshotSender<T> for SimOneshotSender<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}

/// An async mutex; waiters acquire it in FIFO order.
pub struct SimMutex<T>(tokio::sync::Mutex<T>);

impl<T: OptionalSend + 'static> mutex::Mutex<T> for SimMutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        SimMutex(tokio::sync::Mutex::new(value))
    }

    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + OptionalSend {
        self.0.lock()
    }
}
