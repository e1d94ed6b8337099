//! The composition root: binds a node's ports, opens the [`Node`], runs one accept loop per
//! port ([`accept_until_shutdown`]) handing connections to the client
//! ([`ClientPort`]), Raft ([`raft_port`]) and admin ([`admin`]) handlers, and forms or
//! joins the cluster. Everything below it is wired here and nothing below imports it back.
//!
//! - no peers and no join address: a one-member cluster of this node;
//! - `peers`: every node started with the same peer list initializes it;
//! - `join`: the node asks a member over RESP to add it as a learner (`RAFT ADD-LEARNER`), then
//!   to promote it (`RAFT PROMOTE`), retrying until both succeed ([`join`]).
//!
//! A node that already holds a Raft log skips all three and resumes with its data.

mod accept;
mod join;
pub mod raft_port;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use accept::accept_until_shutdown;

use crate::admin;
use crate::node::Node;
use crate::node::NodeOptions;
use crate::node::StartError;
use crate::protocol::ClientPort;
use crate::tls::Stream;

/// Binds the ports, opens the node, starts its servers and forms or joins the cluster (see
/// the module docs). Returns once the ports accept connections; the cluster may still be
/// electing a leader. [`Node::shutdown`] stops everything started here.
pub async fn start(mut options: NodeOptions) -> Result<Node, StartError> {
    let (raft_listener, raft_addr) = bind(&options.raft_addr).await?;
    let (client_listener, client_addr) = bind(&options.client_addr).await?;
    let admin_listener = match &options.admin_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    options.raft_addr = raft_addr.to_string();
    options.client_addr = client_addr.to_string();
    if let Some((_, addr)) = &admin_listener {
        options.admin_addr = Some(addr.to_string());
    }
    if options.cluster_secret.is_none() && options.password.is_none() && options.tls.is_none() {
        tracing::warn!(
            raft = %options.raft_addr,
            "no TLS, no cluster secret and no password: anyone who reaches the Raft port can join the cluster's traffic (see docs/security.md)"
        );
    }
    let node = Node::open(options).await?;
    let peer_node = node.clone();
    let members = node.tls().map(|tls| tls.members.clone());
    tokio::spawn(accept_until_shutdown(
        raft_listener,
        node.shutdown_signal(),
        "raft",
        move |tcp, peer| {
            let (node, members) = (peer_node.clone(), members.clone());
            async move {
                let stream = Stream::accept(tcp, members.as_ref()).await.inspect_err(|error| {
                    tracing::warn!(%peer, %error, "refused a Raft port connection in the TLS handshake");
                    node.metrics().raft_handshakes_refused.add(1);
                })?;
                raft_port::connection(stream, peer, node).await
            }
        },
    ));
    let clients = Arc::new(ClientPort::new(node.clone()));
    let acceptor = node.tls().map(|tls| tls.clients.clone());
    let client_acceptor = acceptor.clone();
    tokio::spawn(accept_until_shutdown(
        client_listener,
        node.shutdown_signal(),
        "client",
        move |tcp, _| {
            let (clients, acceptor) = (clients.clone(), client_acceptor.clone());
            async move { clients.serve(Stream::accept(tcp, acceptor.as_ref()).await?).await }
        },
    ));
    if let Some((listener, _)) = admin_listener {
        let admin_node = node.clone();
        tokio::spawn(accept_until_shutdown(
            listener,
            node.shutdown_signal(),
            "admin",
            move |tcp, _| {
                let (node, acceptor) = (admin_node.clone(), acceptor.clone());
                async move { admin::respond(Stream::accept(tcp, acceptor.as_ref()).await?, node).await }
            },
        ));
    }
    if node.initialize().await? {
        let member = node
            .options()
            .join
            .clone()
            .expect("initialize asks to join only with a join address");
        tokio::spawn(join::join(node.clone(), member));
    }
    let options = node.options();
    tracing::info!(
        id = node.id(),
        client = %options.client_addr,
        raft = %options.raft_addr,
        admin = ?options.admin_addr,
        "node started"
    );
    Ok(node)
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
