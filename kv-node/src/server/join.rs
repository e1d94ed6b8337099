//! Joining a running cluster through one of its members.

use std::time::Duration;

use crate::client::ClusterClient;
use crate::client::ClusterOptions;
use crate::node::Node;

/// How long one round of joining retries (failover to the leader, no leader yet) before it
/// starts over.
const ROUND: Duration = Duration::from_secs(10);

/// Joins through `member` (a client address): add as learner, then promote, through a
/// [`ClusterClient`] (which goes to the leader and rides out elections); rounds are retried
/// with a growing pause until both succeed or the node shuts down. Both steps are safe to
/// repeat, so a round that ended with an unknown outcome simply runs again.
pub(super) async fn join(node: Node, member: String) {
    let id = node.id().to_string();
    let me = node.self_node();
    let options = ClusterOptions {
        password: node.options().password.clone(),
        tls: node.tls().map(|tls| tls.connector.clone()),
        retry_for: ROUND,
        ..ClusterOptions::default()
    };
    let mut shutdown = node.shutdown_signal();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut client = ClusterClient::new([&member], options.clone())?;
            let add = [
                "RAFT",
                "ADD-LEARNER",
                id.as_str(),
                me.raft_addr.as_str(),
                me.client_addr.as_str(),
            ];
            client.call(&add).await?;
            client.call(&["RAFT", "PROMOTE", id.as_str()]).await.map(drop)
        };
        let result = tokio::select! {
            result = attempt => result,
            _ = shutdown.changed() => return,
        };
        match result {
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
