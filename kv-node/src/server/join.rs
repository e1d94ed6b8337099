//! Joining a running cluster through one of its members.

use std::time::Duration;

use crate::client::Client;
use crate::node::Node;

/// Joins through `member` (a client address): add as learner, then promote; retried with a
/// growing pause until both succeed or the node shuts down.
pub(super) async fn join(node: Node, member: String) {
    let id = node.id().to_string();
    let me = node.self_node();
    let password = node.options().password.clone();
    let mut shutdown = node.shutdown_signal();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let tls = node.tls().map(|tls| &tls.connector);
            let mut client = Client::connect_tls(&member, password.as_deref(), tls).await?;
            let add = [
                "RAFT",
                "ADD-LEARNER",
                id.as_str(),
                me.raft_addr.as_str(),
                me.client_addr.as_str(),
            ];
            client.call_ok(&add).await?;
            client.call_ok(&["RAFT", "PROMOTE", id.as_str()]).await.map(drop)
        };
        match attempt.await {
            Ok(()) => {
                tracing::info!(%member, "joined the cluster");
                return;
            }
            Err(error) => tracing::warn!(%member, %error, "joining failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
