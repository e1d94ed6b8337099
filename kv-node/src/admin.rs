//! The admin HTTP port: `GET /metrics` (Prometheus text) and `GET /health`.
//!
//! With TLS on the node, the admin port serves TLS only (the client port's certificate and
//! client-certificate policy); with a password, `/metrics` needs it (see [`respond`]).
//!
//! A deliberately tiny HTTP/1.1 responder: one request per connection, a bounded request head,
//! `Connection: close`.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

use kv_core::wire::Role;

use crate::node::Node;
use crate::protocol::auth::constant_time_eq;
use crate::tls::Stream;

/// Longest request head read.
const MAX_HEAD: usize = 8 << 10;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The method and path of a request head, if it has a well-formed request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    parts.next()?.starts_with("HTTP/").then_some((method, path))
}

/// The token of an `Authorization: Bearer <token>` header, if the head has one.
fn bearer(head: &[u8]) -> Option<&[u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if !name.eq_ignore_ascii_case(b"authorization") {
            return None;
        }
        let (scheme, token) = value.split_at(value.iter().position(|&b| b == b' ')?);
        scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii())
    })
}

/// Answers one request on an admin connection, then closes it. With a password set on the
/// node, everything but `/health` needs it as a bearer token (Prometheus: `authorization:
/// { credentials: ... }`); `/health` tells only the role, term and indexes, which a load
/// balancer must see without a secret.
pub async fn respond(mut stream: Stream, node: Node) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = request_line(&head);
    let allowed = match (&node.options().password, line) {
        (_, Some((_, "/health"))) | (None, _) => true,
        (Some(password), _) => bearer(&head).is_some_and(|given| constant_time_eq(given, password.as_bytes())),
    };
    let (status, content_type, body) = match line {
        _ if !allowed => (
            "401 Unauthorized\r\nWWW-Authenticate: Bearer",
            "text/plain",
            "the node's password is required (Authorization: Bearer <password>)\n".to_string(),
        ),
        Some(("GET", "/metrics")) => ("200 OK", "text/plain; version=0.0.4", node.render_metrics()),
        Some(("GET", "/health")) => {
            let s = node.status();
            let leader = s.leader.as_ref().map_or("null".to_string(), |(id, _)| id.to_string());
            let body = format!(
                "{{\"id\":{},\"role\":\"{}\",\"term\":{},\"leader\":{leader},\"commit_index\":{},\"applied_index\":{}}}\n",
                s.id,
                s.role.as_str(),
                s.term,
                s.commit_index,
                s.applied_index
            );
            // Serving means a leader is known and Raft runs here.
            let status = if s.leader.is_some() && s.role != Role::Shutdown && !node.lost_data().is_lost() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", body)
        }
        Some(("GET", _)) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        Some(_) => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
        None => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::request_line;

    #[test]
    fn parses_request_lines() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe"), None);
    }
}
