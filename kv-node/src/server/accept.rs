//! The accept loop every port of a node shares.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Accepts connections on `listener` until `shutdown` changes, serving each on a task of its
/// own with `handle`; `port` names the port in log lines. A failed accept (out of file
/// descriptors, say) is logged and retried after a pause rather than ending the loop.
pub async fn accept_until_shutdown<F, Fut, E>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    port: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = handle(stream, peer);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "{port} connection closed");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a {port} connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
