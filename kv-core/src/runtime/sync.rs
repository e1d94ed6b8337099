//! Channels and the async mutex: thin wrappers over `tokio::sync`, which needs no runtime and
//! only wakes wakers, so it is as deterministic as the executor polling it.

use std::future::Future;

use futures_util::TryFutureExt;
use openraft_rt::OptionalSend;
use openraft_rt::mpsc;
use openraft_rt::mutex;
use openraft_rt::oneshot;
use tokio::sync::mpsc as tokio_mpsc;
use tokio::sync::oneshot as tokio_oneshot;

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
