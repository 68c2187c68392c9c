//! The one HTTP request the auth side makes: a blocking `POST` of a form to a token
//! introspection endpoint (RFC 7662), over plain TCP or rustls, with one deadline for
//! connecting, sending and reading, and a cap on the answer's size.
//!
//! HTTP/1.1 (RFC 9112) as far as that needs: `Connection: close`, so the body ends where the
//! stream does unless `Content-Length` or `Transfer-Encoding: chunked` frames it; no redirects,
//! proxies, keep-alive or compression. Written here rather than taken from a client crate:
//! rustls is already built for the server, and a general client brings a dozen crates for the
//! one request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

/// The largest answer read, headers included: an introspection answer is a small JSON object.
const MAX_RESPONSE: usize = 256 * 1024;

/// An `http://` or `https://` URL, split for connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path with its query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("user information in the URL is not supported".to_owned());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("bad IPv6 address in {url:?}"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port in {url:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("bad authority in {url:?}")),
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (
                    host.to_owned(),
                    port.parse().map_err(|_| format!("bad port in {url:?}"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        {
            return Err(format!("bad host in {url:?}"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("bad path in {url:?}"));
        }
        Ok(HttpUrl {
            tls,
            host,
            port,
            path: path.to_owned(),
        })
    }
}

/// An HTTP answer: its status code and its (de-chunked) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `body` (already `application/x-www-form-urlencoded`) to `url` with the extra
/// `headers`, all within `timeout`. `tls` must be given for an `https://` URL.
pub fn post_form(
    url: &HttpUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let deadline = Instant::now() + timeout;
    let tcp = connect(url, deadline)?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept: application/json\r\nUser-Agent: columba-auth\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        url.path,
        host_header(url),
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let raw = if url.tls {
        let config = tls.ok_or("an https:// URL without a TLS configuration")?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| format!("server name {:?}: {e}", url.host))?;
        let connection = rustls::ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(
            rustls::StreamOwned::new(connection, tcp.try_clone().map_err(|e| e.to_string())?),
            &tcp,
            &request,
            deadline,
        )?
    } else {
        exchange(
            tcp.try_clone().map_err(|e| e.to_string())?,
            &tcp,
            &request,
            deadline,
        )?
    };
    parse_response(&raw)
}

fn host_header(url: &HttpUrl) -> String {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    if url.port == if url.tls { 443 } else { 80 } {
        host
    } else {
        format!("{host}:{}", url.port)
    }
}

fn connect(url: &HttpUrl, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {}: {e}", url.host))?
        .collect();
    let mut last = format!("{} has no address", url.host);
    for addr in addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_owned())
    } else {
        Ok(left)
    }
}

/// Sends the request and reads the answer to its end over `stream`; `tcp` is the socket under
/// it, whose timeouts keep every read and write within the deadline.
fn exchange(
    mut stream: impl Read + Write,
    tcp: &TcpStream,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("talking to the endpoint: {e}");
    tcp.set_write_timeout(Some(remaining(deadline)?))
        .map_err(io)?;
    stream.write_all(request).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        tcp.set_read_timeout(Some(remaining(deadline)?))
            .map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(format!("answer longer than {MAX_RESPONSE} bytes"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: the framing check below catches a
            // truncated body.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io(e)),
        }
    }
    Ok(raw)
}

/// Splits status line, headers and body, and undoes chunked transfer coding.
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete header")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the answer's header is not text")?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad status line {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
            if !chunked {
                return Err(format!("unsupported transfer coding {value:?}"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = length {
        body.get(..length)
            .ok_or("the answer ends before its Content-Length")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(HttpResponse { status, body })
}

/// RFC 9112 section 7.1: `size-in-hex [;ext] CRLF data CRLF`... `0 CRLF [trailers] CRLF`.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("chunk without its CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/introspect?x=1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/introspect?x=1")
        );
        let u = HttpUrl::parse("https://idp.example.org").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = HttpUrl::parse("http://[::1]:9/p").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(host_header(&u), "[::1]:9");
        for bad in [
            "ftp://x/",
            "http://",
            "http://a:b/",
            "http://user@host/",
            "http://ho st/",
            "http://h/p q",
            "http://h/p\r\nX: y",
            "http://[::1/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// An endpoint's answer, however broken, is an error or a response: never a panic.
        #[test]
        fn any_answer_parses_or_fails(
            raw in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'\r'),
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b':'),
                    proptest::strategy::Just(b'0'),
                    proptest::prelude::any::<u8>(),
                ],
                0..200,
            ),
            prefix in proptest::sample::select(vec![
                "",
                "HTTP/1.1 200 OK\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            ]),
        ) {
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&raw);
            let _ = parse_response(&answer);
            let _ = HttpUrl::parse(&String::from_utf8_lossy(&raw));
        }
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n2\r\n:1\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"{\"a\":1}");
        let r = parse_response(b"HTTP/1.0 401 Unauthorized\r\n\r\nno").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (401, &b"no"[..]));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"SMTP 200 OK\r\n\r\n",
            b"HTTP/1.1 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
