//! A small blocking HTTP/1.1 client: one request per connection, for the
//! two or three requests a push makes.
//!
//! Why not a general client: a push sends a token in `Authorization`, and
//! the blocking clients at hand dump the bytes they write at trace level
//! (ureq through `log`, which suture forwards to its logs), while hyper is
//! async and would need a runtime inside libgit2's synchronous callbacks. A
//! push needs no pooling, proxy, compression or HTTP/2, so the whole
//! exchange fits here, and nothing in this file logs: every request says
//! `Connection: close` and sends its body whole with `Content-Length`;
//! answers are framed by `Content-Length`, chunked encoding, or the end of
//! the connection.
//!
//! TLS is rustls (ring) checked against the system's CA certificates, which
//! are read on the first `https` request of the process and kept: a process
//! that never pushes over HTTPS never reads them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::Timeouts;

/// The most a status line and headers may take.
const MAX_HEAD: usize = 64 * 1024;
/// The most a chunk-size line or trailer line may take.
const MAX_LINE: usize = 4 * 1024;

/// What an HTTP request could not do. Texts never carry a URL or a header.
#[derive(Debug)]
pub(crate) enum Error {
    /// The URL is not an `http://` or `https://` URL this client can use.
    Url(&'static str),
    /// The host name does not resolve.
    Resolve(io::Error),
    /// No address of the host accepted a connection in time.
    Connect(io::Error),
    /// The TLS handshake refused the remote's certificate, or there is no
    /// CA certificate to check it against.
    Certificate(String),
    /// Another TLS failure (protocol versions, alerts).
    Tls(String),
    /// Sending or receiving failed or timed out.
    Io(io::Error),
    /// The answer is not HTTP/1.x.
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Url(reason) => write!(f, "unusable remote URL: {reason}"),
            Error::Resolve(error) => write!(f, "the remote's host name does not resolve: {error}"),
            Error::Connect(error) => write!(f, "cannot connect to the remote: {error}"),
            Error::Certificate(reason) => {
                write!(f, "the remote's TLS certificate is not trusted: {reason}")
            }
            Error::Tls(reason) => write!(f, "TLS with the remote failed: {reason}"),
            Error::Io(error) => write!(f, "talking to the remote failed: {error}"),
            Error::Protocol(reason) => write!(f, "the remote does not answer HTTP: {reason}"),
        }
    }
}

/// Where a request goes, from an `http(s)://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    tls: bool,
    /// For DNS and SNI: no brackets around an IPv6 address.
    host: String,
    port: u16,
    /// For the `Host` header: the port only when it is not the default.
    host_header: String,
    /// Path and query, from `/`.
    path: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        let uri: http::Uri = url.parse().map_err(|_| Error::Url("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Error::Url("neither http nor https")),
        };
        let authority = uri.authority().ok_or(Error::Url("no host"))?;
        if authority.as_str().contains('@') {
            // Credentials travel in `Authorization`, never in a URL.
            return Err(Error::Url("it carries credentials"));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(Error::Url("no host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default_port);
        let host_header = if port == default_port {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_string();
        Ok(Target {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            host_header,
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
        })
    }

    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_header)
    }

    /// Scheme, host and port: what a redirect must keep.
    pub(crate) fn same_origin(&self, other: &Target) -> bool {
        self.tls == other.tls
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

/// One request.
pub(crate) struct Request<'a> {
    /// `GET` or `POST`.
    pub(crate) method: &'static str,
    pub(crate) target: &'a Target,
    /// Headers besides `Host`, `Connection` and `Content-Length`.
    pub(crate) headers: &'a [(&'static str, &'a str)],
    /// A POST's body.
    pub(crate) body: Option<&'a [u8]>,
}

/// An answer: status and headers read, the body left to read.
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Body,
}

impl Response {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Sends `request` on a new connection and reads the answer's head.
pub(crate) fn send(request: &Request<'_>, timeouts: Timeouts) -> Result<Response, Error> {
    let mut stream = connect(request.target, timeouts)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        request.method, request.target.path, request.target.host_header
    );
    for (name, value) in request.headers {
        if value.contains(['\r', '\n']) {
            return Err(Error::Url("a header value spans lines"));
        }
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if let Some(body) = request.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(request.body.unwrap_or_default()))
        .and_then(|()| stream.flush());
    sent.map_err(Error::Io)?;
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    let (status, headers) = loop {
        let (status, headers) = read_head(&mut reader)?;
        // 100 Continue and other interim answers precede the real one.
        if !(100..200).contains(&status) || status == 101 {
            break (status, headers);
        }
    };
    let framing = framing(request.method, status, &headers)?;
    Ok(Response {
        status,
        headers,
        body: Body {
            reader,
            framing,
            done: false,
        },
    })
}

/// The system's CA certificates, read on the first HTTPS request.
fn tls_config() -> Result<Arc<ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if !found.errors.is_empty() {
                tracing::warn!(
                    loaded = added,
                    errors = found.errors.len(),
                    first = %found.errors[0],
                    "some of the system's CA certificates could not be read"
                );
            }
            if added == 0 {
                return Err(match found.errors.first() {
                    Some(error) => {
                        format!("no CA certificate could be read from this system ({error})")
                    }
                    None => "this system has no CA certificates".to_string(),
                });
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|error| error.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(Error::Certificate)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

fn connect(target: &Target, timeouts: Timeouts) -> Result<Stream, Error> {
    // Resolution has no timeout of its own: the system resolver bounds it.
    let addresses = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(Error::Resolve)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    let mut connected = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeouts.connect) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(error) => last = error,
        }
    }
    let tcp = connected.ok_or(Error::Connect(last))?;
    // A timeout per read and per write, as libgit2's own transport had: a
    // remote that stops answering fails the push instead of hanging it.
    tcp.set_read_timeout(Some(timeouts.io))
        .and_then(|()| tcp.set_write_timeout(Some(timeouts.io)))
        .and_then(|()| tcp.set_nodelay(true))
        .map_err(Error::Io)?;
    if !target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let name = ServerName::try_from(target.host.as_str())
        .map_err(|_| Error::Url("the host is not a valid TLS server name"))?
        .to_owned();
    let connection = ClientConnection::new(tls_config()?, name)
        .map_err(|error| Error::Tls(error.to_string()))?;
    let mut stream = StreamOwned::new(connection, tcp);
    // Handshake now, so that a refused certificate is told apart from a
    // failed write.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(handshake_error)?;
    }
    Ok(Stream::Tls(Box::new(stream)))
}

fn handshake_error(error: io::Error) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => Error::Certificate(tls.to_string()),
        Some(tls) => Error::Tls(tls.to_string()),
        None => Error::Io(error),
    }
}

/// Reads a status line and headers.
fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), Error> {
    let mut budget = MAX_HEAD;
    let status_line = read_line(reader, &mut budget)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code));
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(Error::Protocol("no HTTP/1.x status line".to_string()));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Protocol("a header line without a colon".to_string()));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// One line without its line end; `budget` caps what a head may take.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<String, Error> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    reader
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(Error::Io)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() >= *budget {
            Error::Protocol("the answer's head is too long".to_string())
        } else {
            Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed mid-answer",
            ))
        });
    }
    *budget -= line.len();
    while line
        .last()
        .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
    {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| Error::Protocol("a head line is not UTF-8".to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes remain.
    Length(u64),
    /// Chunked: this many bytes remain of the current chunk (0: read the
    /// next size line).
    Chunked(u64),
    /// Until the connection ends.
    Close,
}

fn framing(method: &str, status: u16, headers: &[(String, String)]) -> Result<Framing, Error> {
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    let value = |name: &'static str| {
        headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    if let Some(codings) = value("transfer-encoding").next_back() {
        let last = codings.rsplit(',').next().unwrap_or_default().trim();
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked(0)
        } else {
            Framing::Close
        });
    }
    let mut lengths = value("content-length").map(|length| length.trim().parse::<u64>());
    match lengths.next() {
        None => Ok(Framing::Close),
        Some(Ok(length)) if lengths.all(|other| other.as_ref() == Ok(&length)) => {
            Ok(Framing::Length(length))
        }
        Some(_) => Err(Error::Protocol("an unusable Content-Length".to_string())),
    }
}

/// An answer's body, as its framing says.
pub(crate) struct Body {
    reader: BufReader<Stream>,
    framing: Framing,
    done: bool,
}

impl Body {
    /// The body's start, as text, for an error message.
    pub(crate) fn text_start(mut self, max: usize) -> String {
        let mut bytes = Vec::new();
        let _ = (&mut self)
            .take(u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn chunk_size(&mut self) -> io::Result<u64> {
        let mut budget = MAX_LINE;
        let line = read_line(&mut self.reader, &mut budget).map_err(into_io)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        u64::from_str_radix(size, 16).map_err(|_| malformed("a chunk size is not hexadecimal"))
    }

    fn end_of_chunk(&mut self) -> io::Result<()> {
        let mut budget = MAX_LINE;
        match read_line(&mut self.reader, &mut budget).map_err(into_io)? {
            line if line.is_empty() => Ok(()),
            _ => Err(malformed("a chunk is longer than its size")),
        }
    }

    fn trailers(&mut self) -> io::Result<()> {
        let mut budget = MAX_HEAD;
        while !read_line(&mut self.reader, &mut budget)
            .map_err(into_io)?
            .is_empty()
        {}
        Ok(())
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::Close => {
                let read = self.reader.read(buf)?;
                self.done = read == 0;
                Ok(read)
            }
            Framing::Length(0) => {
                self.done = true;
                Ok(0)
            }
            Framing::Length(remaining) => {
                let read = self.reader.read(cap(buf, remaining))?;
                if read == 0 {
                    return Err(cut_short());
                }
                self.framing = Framing::Length(remaining - read as u64);
                Ok(read)
            }
            Framing::Chunked(0) => {
                let size = self.chunk_size()?;
                if size == 0 {
                    self.trailers()?;
                    self.done = true;
                    return Ok(0);
                }
                self.framing = Framing::Chunked(size);
                self.read(buf)
            }
            Framing::Chunked(remaining) => {
                let read = self.reader.read(cap(buf, remaining))?;
                if read == 0 {
                    return Err(cut_short());
                }
                let left = remaining - read as u64;
                if left == 0 {
                    self.end_of_chunk()?;
                }
                self.framing = Framing::Chunked(left);
                Ok(read)
            }
        }
    }
}

fn cap(buf: &mut [u8], remaining: u64) -> &mut [u8] {
    let len = usize::try_from(remaining).map_or(buf.len(), |left| left.min(buf.len()));
    &mut buf[..len]
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed before the answer's end",
    )
}

fn malformed(reason: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

fn into_io(error: Error) -> io::Error {
    match error {
        Error::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framing: Framing, wire: &[u8]) -> Result<Vec<u8>, io::Error> {
        // A connected pair stands in for the remote.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut remote = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, _) = listener.accept().unwrap();
        remote.write_all(wire).unwrap();
        drop(remote);
        let mut body = Body {
            reader: BufReader::with_capacity(7, Stream::Plain(local)),
            framing,
            done: false,
        };
        let mut out = Vec::new();
        body.read_to_end(&mut out).map(|_| out)
    }

    /// URLs: default ports, IPv6 brackets, path and query kept; other
    /// schemes and credentials in the URL refused.
    #[test]
    fn targets() {
        let target = Target::parse("https://GitHub.com/acme/shop.git/info/refs?service=x").unwrap();
        assert_eq!(
            (target.tls, target.host.as_str(), target.port),
            (true, "GitHub.com", 443)
        );
        assert_eq!(target.host_header, "GitHub.com");
        assert_eq!(target.path, "/acme/shop.git/info/refs?service=x");
        let local = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!((local.host.as_str(), local.port), ("::1", 8080));
        assert_eq!(local.host_header, "[::1]:8080");
        assert_eq!(local.path, "/");
        for refused in [
            "ssh://github.com/a",
            "https://x-access-token:t@github.com/a",
            "/a/b",
        ] {
            assert!(Target::parse(refused).is_err(), "{refused}");
        }
        let other_port = Target::parse("https://github.com:444/a").unwrap();
        assert!(!target.same_origin(&other_port));
        assert!(target.same_origin(&Target::parse("https://github.com/b").unwrap()));
        assert!(!target.same_origin(&Target::parse("http://github.com/b").unwrap()));
    }

    /// Status line and headers; interim lines and oversized heads.
    #[test]
    fn heads() {
        let mut wire: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length:  3 \r\n\r\nabc";
        let (status, headers) = read_head(&mut wire).unwrap();
        assert_eq!(status, 401);
        assert_eq!(
            headers,
            [
                (
                    "WWW-Authenticate".to_string(),
                    "Basic realm=\"x\"".to_string()
                ),
                ("Content-Length".to_string(), "3".to_string())
            ]
        );
        assert_eq!(
            framing("GET", status, &headers).unwrap(),
            Framing::Length(3)
        );
        let mut garbage: &[u8] = b"SSH-2.0-OpenSSH\r\n\r\n";
        assert!(matches!(read_head(&mut garbage), Err(Error::Protocol(_))));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            read_head(&mut long.as_bytes()),
            Err(Error::Protocol(_))
        ));
        let chunked = [("Transfer-Encoding".to_string(), "gzip, chunked".to_string())];
        assert_eq!(framing("POST", 200, &chunked).unwrap(), Framing::Chunked(0));
        let twice = [
            ("content-length".to_string(), "1".to_string()),
            ("Content-Length".to_string(), "2".to_string()),
        ];
        assert!(framing("GET", 200, &twice).is_err());
        assert_eq!(framing("GET", 200, &[]).unwrap(), Framing::Close);
    }

    /// Bodies by length, by chunks (extensions and trailers included) and
    /// to the end of the connection; a body cut short is an error, not a
    /// short read.
    #[test]
    fn bodies() {
        assert_eq!(body(Framing::Length(5), b"hello, world").unwrap(), b"hello");
        assert_eq!(
            body(
                Framing::Chunked(0),
                b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n4\r\nin\r\n\r\n0\r\nX-Trailer: y\r\n\r\nrest"
            )
            .unwrap(),
            b"Wikipedia in\r\n"
        );
        assert_eq!(body(Framing::Close, b"all of it").unwrap(), b"all of it");
        let short = body(Framing::Length(10), b"abc").unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        assert!(body(Framing::Chunked(0), b"5\r\nab").is_err());
        assert!(body(Framing::Chunked(0), b"zz\r\n").is_err());
    }
}
