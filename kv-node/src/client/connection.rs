//! One RESP2 connection to one node: what [`ClusterClient`](super::ClusterClient) runs on,
//! and what tests and benchmarks use to talk to a given node.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kv_node::client::ClientError> {
//! use kv_node::client::Client;
//! use kv_node::protocol::Reply;
//!
//! let mut client = Client::connect("127.0.0.1:7379", None).await?;
//! client.call_ok(&["SET", "greeting", "hello"]).await?;
//! assert_eq!(client.call(&["GET", "greeting"]).await?, Reply::Bulk(b"hello".to_vec()));
//! # Ok(()) }
//! ```

use std::io::Write as _;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::protocol::ParseLimits;
use crate::protocol::ProtocolError;
use crate::protocol::Reply;
use crate::protocol::parser;
use crate::tls;
use crate::tls::Stream;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that is not RESP.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server answered with an error.
    #[error("{0}")]
    Server(String),
    /// The server answered with something unexpected.
    #[error("unexpected reply {0:?}")]
    Unexpected(Reply),
}

/// One connection to a node.
#[derive(Debug)]
pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
    pending: Vec<u8>,
    limits: ParseLimits,
}

impl Client {
    /// Connects to `addr` and, if `password` is given, authenticates.
    pub async fn connect(addr: &str, password: Option<&str>) -> Result<Client, ClientError> {
        Client::connect_tls(addr, password, None).await
    }

    /// Connects to `addr`, over TLS with `tls` if given (the certificate must name the host
    /// in `addr`), and, if `password` is given, authenticates.
    pub async fn connect_tls(
        addr: &str,
        password: Option<&str>,
        tls: Option<&TlsConnector>,
    ) -> Result<Client, ClientError> {
        let connect_error = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            match tls {
                Some(connector) => tls::connect(connector, addr, tcp).await,
                None => Ok(Stream::Plain(tcp)),
            }
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        let mut client = Client {
            stream,
            buf: Vec::with_capacity(16 << 10),
            pending: Vec::new(),
            limits: ParseLimits {
                max_bulk_len: 512 << 20,
                max_array_len: 1 << 30,
                max_depth: 16,
                ..ParseLimits::default()
            },
        };
        if let Some(password) = password {
            client.call_ok(&["AUTH", password]).await?;
        }
        Ok(client)
    }

    /// Queues a command; [`Client::flush`] sends everything queued.
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let out = &mut self.pending;
        let _ = write!(out, "*{}\r\n", args.len());
        for arg in args {
            let arg = arg.as_ref();
            let _ = write!(out, "${}\r\n", arg.len());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Sends every queued command.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.stream.write_all(&self.pending).await?;
        self.pending.clear();
        Ok(())
    }

    /// Reads the next reply (an error reply is returned as [`Reply::Error`]).
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some((reply, used)) = parser::parse_reply(&self.buf, &self.limits)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            self.buf.reserve(16 << 10);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Sends one command and reads its reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClientError> {
        self.queue(args);
        self.flush().await?;
        self.read_reply().await
    }

    /// Sends one command and expects anything but an error.
    pub async fn call_ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClientError> {
        match self.call(args).await? {
            Reply::Error(e) => Err(ClientError::Server(e)),
            reply => Ok(reply),
        }
    }
}
