//! TLS on every port, with rustls (the *ring* provider; no OpenSSL).
//!
//! A node configured with a certificate, its key and the cluster CA ([`TlsOptions`]) serves
//! TLS only, on all three ports, with that one certificate:
//!
//! | port | server side | clients must present |
//! |---|---|---|
//! | client (RESP) | the node's certificate | per `--tls-auth-clients`: `yes` a certificate signed by the CA, `optional` (default) one if they like (then it must verify), `no` none |
//! | Raft | the node's certificate | always a certificate signed by the CA: mutual TLS between members |
//! | admin (HTTP) | the node's certificate | as the client port |
//!
//! When a node connects to a peer's Raft port it presents the same certificate (so it must
//! allow client authentication; certificates made by `kv-node local-cluster --tls` do) and
//! verifies the peer's against the CA and the host in the peer's Raft address (a DNS name or an
//! IP address in the certificate's subject alternative names).
//!
//! Why one certificate per node rather than one per port: the ports of one node share one
//! identity, and rotating one file is simpler than three (docs/security.md). Why rustls with
//! *ring*: pure Rust plus *ring*'s small, audited C and assembly; aws-lc-rs would need cmake.
//!
//! [`Stream`] is a connection with or without TLS, so that the handlers above do not care.

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::TlsConnector;

/// Whether clients of the client and admin ports must present a certificate (Redis's
/// `tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Required, signed by the CA.
    Yes,
    /// Not asked for.
    No,
    /// Verified if presented.
    #[default]
    Optional,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "yes" => Ok(ClientAuth::Yes),
            "no" => Ok(ClientAuth::No),
            "optional" => Ok(ClientAuth::Optional),
            other => Err(format!("tls-auth-clients must be yes, no or optional, not {other}")),
        }
    }
}

/// Where a node's certificate, key and cluster CA are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The node's certificate chain.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// The CA that signs every member's (and client's) certificate.
    pub ca_file: PathBuf,
    /// Client certificates on the client and admin ports.
    pub auth_clients: ClientAuth,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The CA file gave no usable verifier.
    #[error("TLS client verifier: {0}")]
    Verifier(String),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificates of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// The CA certificates of a PEM file, as trust roots.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// Everything a node needs for TLS, built once at start.
#[derive(Clone)]
pub struct NodeTls {
    /// The client and admin ports.
    pub clients: TlsAcceptor,
    /// The Raft port (mutual TLS).
    pub members: TlsAcceptor,
    /// Connecting to peers' Raft ports and, for joining, to a member's client port.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTls(..)")
    }
}

impl NodeTls {
    /// Reads the files and builds the three configurations.
    pub fn new(options: &TlsOptions) -> Result<Self, TlsError> {
        let certs = read_certs(&options.cert_file)?;
        let key = read_key(&options.key_file)?;
        let roots = Arc::new(read_roots(&options.ca_file)?);
        let verifier = |optional: bool| {
            let builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let builder = if optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| TlsError::Verifier(e.to_string()))
        };
        let server = || ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions();
        let clients = match options.auth_clients {
            ClientAuth::No => server()?
                .with_no_client_auth()
                .with_single_cert(certs.clone(), key.clone_key())?,
            ClientAuth::Yes | ClientAuth::Optional => server()?
                .with_client_cert_verifier(verifier(options.auth_clients == ClientAuth::Optional)?)
                .with_single_cert(certs.clone(), key.clone_key())?,
        };
        let members = server()?
            .with_client_cert_verifier(verifier(false)?)
            .with_single_cert(certs.clone(), key.clone_key())?;
        let connector = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)?;
        Ok(NodeTls {
            clients: TlsAcceptor::from(Arc::new(clients)),
            members: TlsAcceptor::from(Arc::new(members)),
            connector: TlsConnector::from(Arc::new(connector)),
        })
    }
}

/// A client configuration trusting the CA in `ca_file`, presenting `cert`/`key` if given
/// (the `kv` CLI's `--cacert`, `--cert`, `--key`).
pub fn client_config(ca_file: &Path, cert_and_key: Option<(&Path, &Path)>) -> Result<TlsConnector, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(read_roots(ca_file)?);
    let config = match cert_and_key {
        Some((cert, key)) => builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Connects TLS over `tcp` to `addr` (`host:port`), checking the certificate names `host`.
pub async fn connect(connector: &TlsConnector, addr: &str, tcp: TcpStream) -> io::Result<Stream> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let stream = connector.connect(name, tcp).await?;
    Ok(Stream::TlsClient(Box::new(stream)))
}

/// A connection, with or without TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, accepted by this node.
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS, opened by this process.
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Accepts a connection: with TLS through `acceptor` if given.
    pub async fn accept(tcp: TcpStream, acceptor: Option<&TlsAcceptor>) -> io::Result<Stream> {
        tcp.set_nodelay(true)?;
        match acceptor {
            None => Ok(Stream::Plain(tcp)),
            Some(acceptor) => Ok(Stream::TlsServer(Box::new(acceptor.accept(tcp).await?))),
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $e,
            Stream::TlsServer($s) => $e,
            Stream::TlsClient($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::TlsServer(s) => s.is_write_vectored(),
            Stream::TlsClient(s) => s.is_write_vectored(),
        }
    }
}
