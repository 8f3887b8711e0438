//! The forwarding fast path's byte-level work (pure): which parsed request heads it may forward itself, the request and response heads rewritten straight into the other side's bytes (the same rewriting `headers.rs` does on hyper's header maps), and the framing of a response body; never does IO and never decides where a request goes.
//!
//! A request the fast path does not take is handed to hyper untouched
//! (see `fast.rs`): [`classify`] says [`Verdict::HandOff`] for anything
//! but a plain bodyless idempotent HTTP/1.1 request in origin form with a
//! `Host`, so every case where hyper's stricter checks or richer handling
//! matter (bodies, upgrades, `Expect`, `Connection: close`, odd targets,
//! too many or malformed headers) is still hyper's.

use std::fmt::Write as _;

/// Header lines parsed per message, as hyper's default (`max_headers`).
pub const MAX_HEADERS: usize = 100;

/// Connection-header tokens remembered per message; more: hyper's path.
const MAX_CONNECTION_TOKENS: usize = 8;

/// What to do with the bytes at the start of a client buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The head is not complete yet.
    Partial,
    /// hyper's path serves this request (and the rest of the connection).
    HandOff,
    /// The fast path forwards it: the head is `len` bytes.
    Forward(Forwarded),
}

/// A request the fast path forwards, its backend head already written.
#[derive(Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// Length of the client's head (bodyless: the whole request).
    pub len: usize,
    /// HEAD: the response has no body whatever its headers say.
    pub head: bool,
    /// The value of the persistence cookie, when the request had one.
    pub cookie_server: Option<String>,
    /// `Connection: close`: the client connection ends after the answer
    /// (which says so).
    pub close: bool,
}

/// What the request rewriting needs from the connection and settings.
pub struct Rewrite<'a> {
    /// `option forwardfor`: the header name and the client address text.
    pub forwardfor: Option<(&'a str, &'a str)>,
    /// `X-Forwarded-Proto`/`-Port` values, when set.
    pub forwarded_proto: Option<(&'static str, u16)>,
    /// `cookie NAME insert`: the name, and whether `indirect` strips it.
    pub cookie: Option<(&'a str, bool)>,
}

/// Parses the request head at the start of `buf` and, when the fast path
/// takes it, writes the head the backend gets into `out` (cleared first).
/// `wanted` says whether another part of keepmon answers this target
/// itself (an intercept: hyper's path).
pub fn classify(
    buf: &[u8],
    rewrite: &Rewrite<'_>,
    wanted: impl Fn(&str) -> bool,
    out: &mut Vec<u8>,
) -> Verdict {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Verdict::Partial,
        // Malformed or too many headers: hyper answers it as it always did.
        Err(_) => return Verdict::HandOff,
    };
    let (Some(method), Some(path), Some(1)) = (request.method, request.path, request.version)
    else {
        return Verdict::HandOff;
    };
    let head = match method {
        "GET" | "OPTIONS" | "TRACE" | "PUT" | "DELETE" => false,
        "HEAD" => true,
        _ => return Verdict::HandOff,
    };
    if !is_plain_origin_form(path) || wanted(path) {
        return Verdict::HandOff;
    }
    let mut tokens: [&[u8]; MAX_CONNECTION_TOKENS] = [&[]; MAX_CONNECTION_TOKENS];
    let mut token_count = 0;
    let mut close = false;
    let mut host = false;
    let mut cookie_seen = false;
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if header.value != b"0" {
                return Verdict::HandOff;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Verdict::HandOff;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.is_empty() {
                    continue;
                }
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                    continue;
                }
                if token.eq_ignore_ascii_case(b"upgrade") || token_count == MAX_CONNECTION_TOKENS {
                    return Verdict::HandOff;
                }
                tokens[token_count] = token;
                token_count += 1;
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            host = true;
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookie_seen = true;
        }
    }
    if !host {
        return Verdict::HandOff;
    }
    let named = &tokens[..token_count];
    let cookie_lines = || {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
            .filter_map(|h| visible_str(h.value))
    };
    let cookie_server = match rewrite.cookie {
        Some((name, _)) if cookie_seen => {
            super::cookie::value_in_lines(cookie_lines(), name).map(str::to_string)
        }
        _ => None,
    };
    let strip = match rewrite.cookie {
        Some((name, true)) if cookie_server.is_some() => Some(name),
        _ => None,
    };

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if is_hop_by_hop(name) || named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if rewrite.forwarded_proto.is_some()
            && (name.eq_ignore_ascii_case(b"x-forwarded-proto")
                || name.eq_ignore_ascii_case(b"x-forwarded-port"))
        {
            continue;
        }
        if let Some(cookie) = strip
            && name.eq_ignore_ascii_case(b"cookie")
            && let Some(line) = visible_str(header.value)
        {
            if let Some(kept) = super::cookie::strip_line(line, cookie, false) {
                put_header(out, header.name.as_bytes(), kept.as_bytes());
            }
            continue;
        }
        put_header(out, name, header.value);
    }
    if let Some((name, ip)) = rewrite.forwardfor {
        put_header(out, name.as_bytes(), ip.as_bytes());
    }
    if let Some((proto, port)) = rewrite.forwarded_proto {
        put_header(out, b"x-forwarded-proto", proto.as_bytes());
        let mut text = String::new();
        let _ = write!(text, "{port}");
        put_header(out, b"x-forwarded-port", text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Verdict::Forward(Forwarded {
        len,
        head,
        cookie_server,
        close,
    })
}

/// Only what `http::Uri` takes in a path and query, so that hyper's path
/// and this one accept the same targets; anything else goes to hyper.
fn is_plain_origin_form(path: &str) -> bool {
    path.starts_with('/')
        && path.bytes().all(|b| {
            matches!(b,
                b'!' | b'$'..=b';' | b'=' | b'?'..=b'[' | b']' | b'_' | b'a'..=b'z' | b'~')
        })
}

/// The header value as `HeaderValue::to_str` gives it: visible ASCII only.
fn visible_str(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// The fixed hop-by-hop set `headers.rs` drops both ways (and `Expect`,
/// which a forwarded request never has).
fn is_hop_by_hop(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"proxy-authenticate",
        b"upgrade",
    ]
    .iter()
    .any(|hop| hop.eq_ignore_ascii_case(name))
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    Length(u64),
    /// Chunked: passed through as it is, checked by [`Chunks`].
    Chunked,
    /// Until the server closes: sent on chunked (as hyper's path does).
    UntilClose,
}

/// A backend's response head, parsed and rewritten for the client.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseHead {
    Partial,
    /// The server broke HTTP: the request fails (502, or a retry).
    Invalid(&'static str),
    /// An interim 1xx response (not 101) of `len` bytes: dropped, as
    /// hyper's client does.
    Interim {
        len: usize,
    },
    Final(Response),
}

/// A final response head: the client's head is in the caller's `out`.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Length of the server's head.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The server keeps the connection open after this response.
    pub reusable: bool,
}

/// What the response rewriting adds.
pub struct Additions<'a> {
    /// `cookie ... insert`: the `Set-Cookie` value and `nocache`.
    pub set_cookie: Option<(&'a [u8], bool)>,
    /// The client asked to close: `Connection: close`, as hyper answers.
    pub close: bool,
}

/// Parses the response head at the start of `buf` (the answer to a HEAD
/// request when `head`) and writes the head the client gets into `out`.
pub fn response_head(
    buf: &[u8],
    head: bool,
    additions: &Additions<'_>,
    out: &mut Vec<u8>,
) -> ResponseHead {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return ResponseHead::Partial,
        Err(_) => return ResponseHead::Invalid("malformed response head"),
    };
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return ResponseHead::Invalid("malformed response head");
    };
    if status < 100 {
        return ResponseHead::Invalid("status code below 100");
    }
    if status == 101 {
        return ResponseHead::Invalid("101 to a request that asked no upgrade");
    }
    if status < 200 {
        return ResponseHead::Interim { len };
    }
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut tokens: [&[u8]; MAX_CONNECTION_TOKENS] = [&[]; MAX_CONNECTION_TOKENS];
    let mut token_count = 0;
    let (mut close_token, mut keep_alive_token) = (false, false);
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in header.value.split(|&b| b == b',') {
                let Some(value) = parse_length(part.trim_ascii()) else {
                    return ResponseHead::Invalid("invalid Content-Length");
                };
                if length.is_some_and(|known| known != value) {
                    return ResponseHead::Invalid("conflicting Content-Length");
                }
                length = Some(value);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = header.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close_token = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else if !token.is_empty() {
                    if token_count == MAX_CONNECTION_TOKENS {
                        return ResponseHead::Invalid("too many Connection tokens");
                    }
                    tokens[token_count] = token;
                    token_count += 1;
                }
            }
        }
    }
    let framing = if head || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(length)) => Framing::Length(length),
        }
    };
    let close = close_token || (version == 0 && !keep_alive_token);
    let named = &tokens[..token_count];

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut code = String::new();
    let _ = write!(code, "{status} ");
    out.extend_from_slice(code.as_bytes());
    match response.reason {
        Some(reason) if !reason.is_empty() => out.extend_from_slice(reason.as_bytes()),
        _ => out.extend_from_slice(
            hyper::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("<unknown status code>")
                .as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if is_hop_by_hop(name) || named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if framing == Framing::Chunked && name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        put_header(out, name, header.value);
    }
    if matches!(framing, Framing::Chunked | Framing::UntilClose) {
        put_header(out, b"transfer-encoding", b"chunked");
    }
    if let Some((set_cookie, nocache)) = additions.set_cookie {
        put_header(out, b"set-cookie", set_cookie);
        if nocache {
            put_header(out, b"cache-control", b"private");
        }
    }
    if additions.close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    ResponseHead::Final(Response {
        len,
        status,
        framing,
        reusable: !close && framing != Framing::UntilClose,
    })
}

/// A Content-Length value: digits only, as hyper reads it.
fn parse_length(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Longest chunk extension or trailer section taken (hyper's limits are
/// of the same order).
const MAX_CHUNK_META: usize = 16 * 1024;

/// Where a chunked body passed through stands: it finds where the body
/// ends and refuses bad framing (hex sizes of at most 16 digits, CRLF line
/// ends, a size's extension and the trailers bounded).
#[derive(Debug, Default)]
pub struct Chunks {
    state: ChunkState,
    /// Bytes of the current chunk's data still to come.
    left: u64,
    digits: u8,
    /// Extension and trailer bytes seen.
    meta: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// Blanks after the size digits.
    SizeBlanks,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (an empty one ends the body).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Why a chunked body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked framing from the server: {0}")]
pub struct ChunkError(&'static str);

impl Chunks {
    /// Takes the next bytes of the body: how many of them belong to it
    /// (all of them until the end is found).
    pub fn scan(&mut self, bytes: &[u8]) -> Result<usize, ChunkError> {
        use ChunkState::*;
        let mut at = 0;
        while at < bytes.len() && self.state != Done {
            if self.state == Data {
                let take = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - at);
                at += take;
                self.left -= take as u64;
                if self.left == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = bytes[at];
            at += 1;
            self.state = match (self.state, b) {
                (Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits == 16 {
                        return Err(ChunkError("chunk size too large"));
                    }
                    self.digits += 1;
                    self.left = self.left << 4 | u64::from(hex_value(b));
                    Size
                }
                (Size, _) if self.digits == 0 => return Err(ChunkError("no chunk size")),
                (Size | SizeBlanks, b' ' | b'\t') => SizeBlanks,
                (Size | SizeBlanks, b';') => Extension,
                (Size | SizeBlanks | Extension, b'\r') => SizeLf,
                (Extension, _) => {
                    self.meta += 1;
                    if self.meta > MAX_CHUNK_META {
                        return Err(ChunkError("chunk extension too long"));
                    }
                    Extension
                }
                (SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.left == 0 { TrailerStart } else { Data }
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => EndLf,
                (TrailerLine, b'\r') => TrailerLf,
                (TrailerStart | TrailerLine, b'\n') => {
                    return Err(ChunkError("bare LF in the trailers"));
                }
                (TrailerStart | TrailerLine, _) => {
                    self.meta += 1;
                    if self.meta > MAX_CHUNK_META {
                        return Err(ChunkError("trailers too long"));
                    }
                    TrailerLine
                }
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => Done,
                _ => return Err(ChunkError("bad chunk line")),
            };
        }
        Ok(at)
    }

    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// A chunk's size line for `len` bytes of an until-close body.
pub fn chunk_size_line(len: usize, out: &mut Vec<u8>) {
    let mut line = String::new();
    let _ = write!(line, "{len:x}\r\n");
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Rewrite<'static> {
        Rewrite {
            forwardfor: None,
            forwarded_proto: None,
            cookie: None,
        }
    }

    fn forward(request: &str, rewrite: &Rewrite<'_>) -> (Forwarded, String) {
        let mut out = Vec::new();
        match classify(request.as_bytes(), rewrite, |_| false, &mut out) {
            Verdict::Forward(forwarded) => (forwarded, String::from_utf8(out).unwrap()),
            other => panic!("{request:?}: {other:?}"),
        }
    }

    fn verdict(request: &str) -> Verdict {
        classify(request.as_bytes(), &plain(), |_| false, &mut Vec::new())
    }

    #[test]
    fn a_plain_get_is_forwarded_with_hop_by_hop_headers_dropped() {
        let rewrite = Rewrite {
            forwardfor: Some(("x-forwarded-for", "192.0.2.7")),
            forwarded_proto: Some(("http", 8080)),
            cookie: None,
        };
        let pipelined = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Private\r\n\
             X-Private: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-Proto: https\r\n\
             X-Forwarded-For: 198.51.100.1\r\n\r\nGET /next";
        let (forwarded, out) = forward(pipelined, &rewrite);
        assert_eq!(forwarded.len, pipelined.len() - "GET /next".len());
        assert!(!forwarded.head);
        assert_eq!(
            out,
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1\r\n\
             x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\nx-forwarded-port: 8080\r\n\r\n"
        );
        let request = "HEAD / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";
        let (forwarded, out) = forward(request, &plain());
        assert_eq!(forwarded.len, request.len());
        assert!(forwarded.head && !forwarded.close);
        assert_eq!(out, request);
        let (forwarded, out) = forward(
            "GET / HTTP/1.1\r\nConnection: Close\r\nHost: x\r\n\r\n",
            &plain(),
        );
        assert!(
            forwarded.close,
            "the client connection closes after the answer"
        );
        assert_eq!(
            out, "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "the server connection does not"
        );
    }

    #[test]
    fn everything_but_the_plain_case_goes_to_hyper() {
        for request in [
            "POST / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /a|b HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: a,b,c,d,e,f,g,h,i\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(verdict(request), Verdict::HandOff, "{request:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x{i}: y\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(verdict(&request), Verdict::HandOff);
        assert_eq!(verdict("GET / HTTP/1.1\r\nHost: x\r\n"), Verdict::Partial);
        let wanted = classify(
            b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
            &plain(),
            |path| path == "/stats",
            &mut Vec::new(),
        );
        assert_eq!(wanted, Verdict::HandOff);
    }

    #[test]
    fn an_insert_cookie_is_read_and_stripped_with_indirect() {
        let rewrite = Rewrite {
            forwardfor: None,
            forwarded_proto: None,
            cookie: Some(("SERVERID", true)),
        };
        let (forwarded, out) = forward(
            "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; SERVERID=s2; b=2\r\nCookie: SERVERID=s2\r\n\r\n",
            &rewrite,
        );
        assert_eq!(forwarded.cookie_server.as_deref(), Some("s2"));
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; b=2\r\n\r\n");
        let (forwarded, out) =
            forward("GET / HTTP/1.1\r\nHost: x\r\nCookie: o=1\r\n\r\n", &rewrite);
        assert_eq!(forwarded.cookie_server, None);
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: x\r\nCookie: o=1\r\n\r\n");
    }

    fn respond(head: &str, is_head: bool, additions: &Additions<'_>) -> (Response, String) {
        let mut out = Vec::new();
        match response_head(head.as_bytes(), is_head, additions, &mut out) {
            ResponseHead::Final(response) => (response, String::from_utf8(out).unwrap()),
            other => panic!("{head:?}: {other:?}"),
        }
    }

    const NONE: Additions<'static> = Additions {
        set_cookie: None,
        close: false,
    };

    #[test]
    fn response_heads_are_framed_as_hyper_frames_them() {
        let (response, out) = respond(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello",
            false,
            &Additions {
                set_cookie: Some((b"S=s1; path=/", true)),
                close: true,
            },
        );
        assert_eq!(response.framing, Framing::Length(5));
        assert!(response.reusable);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nset-cookie: S=s1; path=/\r\n\
             cache-control: private\r\nconnection: close\r\n\r\n"
        );
        let (response, out) = respond(
            "HTTP/1.1 404 \r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
            &NONE,
        );
        assert_eq!(response.framing, Framing::Chunked);
        assert_eq!(
            out,
            "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let (response, _) = respond("HTTP/1.0 200 OK\r\n\r\n", false, &NONE);
        assert_eq!(response.framing, Framing::UntilClose);
        assert!(!response.reusable);
        let (response, _) = respond(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
            &NONE,
        );
        assert!(response.reusable);
        let (response, _) = respond(
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
            true,
            &NONE,
        );
        assert_eq!(response.framing, Framing::Empty);
        assert!(!response.reusable);
        let (response, _) = respond("HTTP/1.1 304 Not Modified\r\n\r\n", false, &NONE);
        assert_eq!(response.framing, Framing::Empty);
        let (response, _) = respond(
            "HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n",
            false,
            &NONE,
        );
        assert_eq!(response.framing, Framing::Length(4));
    }

    #[test]
    fn broken_response_heads_are_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 099 Odd\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            "HTTQ/1.1 200 OK\r\n\r\n",
        ] {
            let head = response_head(head.as_bytes(), false, &NONE, &mut Vec::new());
            assert!(matches!(head, ResponseHead::Invalid(_)), "{head:?}");
        }
        assert_eq!(
            response_head(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1",
                false,
                &NONE,
                &mut Vec::new()
            ),
            ResponseHead::Interim { len: 25 }
        );
        assert_eq!(
            response_head(b"HTTP/1.1 200 OK\r\n", false, &NONE, &mut Vec::new()),
            ResponseHead::Partial
        );
    }

    /// Feeds `body` in pieces of `step` bytes: the length found.
    fn scan_in_steps(body: &[u8], step: usize) -> Result<Option<usize>, ChunkError> {
        let mut chunks = Chunks::default();
        let mut taken = 0;
        for piece in body.chunks(step) {
            taken += chunks.scan(piece)?;
            if chunks.done() {
                return Ok(Some(taken));
            }
        }
        Ok(None)
    }

    #[test]
    fn chunked_bodies_end_where_their_last_chunk_and_trailers_do() {
        let body = b"5;ext=1\r\nhello\r\na \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            assert_eq!(
                scan_in_steps(body, step),
                Ok(Some(body.len() - 4)),
                "{step}"
            );
        }
        assert_eq!(scan_in_steps(b"0\r\n\r\n", 5), Ok(Some(5)));
        assert_eq!(scan_in_steps(b"5\r\nhel", 3), Ok(None));
        for bad in [
            &b"x\r\n"[..],
            b"5\nhello\r\n",
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"0\r\nX-T: 1\n\r\n",
            b"0\r\n\rX",
        ] {
            assert!(scan_in_steps(bad, 64).is_err(), "{bad:?}");
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_META + 1));
        assert!(scan_in_steps(long.as_bytes(), 64).is_err());
    }

    /// The fuzz target's properties over every one-byte change of a few
    /// real heads: whatever is forwarded is rewritten into one whole head
    /// without framing or hop-by-hop headers; whatever response is taken
    /// is rewritten into one whole head.
    #[test]
    fn mutated_heads_keep_the_rewriting_sound() {
        let rewrite = Rewrite {
            forwardfor: Some(("x-forwarded-for", "192.0.2.7")),
            forwarded_proto: Some(("http", 80)),
            cookie: Some(("SERVERID", true)),
        };
        let requests = [
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-P\r\nX-P: 1\r\nCookie: a=1; SERVERID=s2\r\n\r\n"[..],
            b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ];
        let responses = [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Q\r\nX-Q: 1\r\n\r\nhello"[..],
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ];
        let replacements = [
            b'\r', b'\n', b' ', b'\t', b':', b',', b';', 0, 0x7f, 0x80, b'a', b'0',
        ];
        let mutations = |seed: &[u8]| {
            let mut all = Vec::new();
            for at in 0..seed.len() {
                for byte in replacements {
                    let mut mutated = seed.to_vec();
                    mutated[at] = byte;
                    all.push(mutated);
                }
            }
            all
        };
        let mut forwarded = 0;
        for input in requests.iter().flat_map(|seed| mutations(seed)) {
            let mut out = Vec::new();
            let Verdict::Forward(request) = classify(&input, &rewrite, |_| false, &mut out) else {
                continue;
            };
            forwarded += 1;
            assert!(request.len <= input.len());
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Request::new(&mut headers);
            assert_eq!(
                parsed.parse(&out),
                Ok(httparse::Status::Complete(out.len())),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
            for header in parsed.headers.iter() {
                let name = header.name.to_ascii_lowercase();
                assert!(
                    !matches!(
                        name.as_str(),
                        "transfer-encoding"
                            | "connection"
                            | "upgrade"
                            | "expect"
                            | "keep-alive"
                            | "te"
                    ),
                    "{name} forwarded from {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
        assert!(forwarded > 100, "{forwarded} mutated requests forwarded");
        let additions = Additions {
            set_cookie: Some((b"SERVERID=s1; path=/", true)),
            close: true,
        };
        for input in responses.iter().flat_map(|seed| mutations(seed)) {
            let mut out = Vec::new();
            let ResponseHead::Final(response) = response_head(&input, false, &additions, &mut out)
            else {
                continue;
            };
            assert!(response.len <= input.len() && response.status >= 200);
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Response::new(&mut headers);
            assert_eq!(
                parsed.parse(&out),
                Ok(httparse::Status::Complete(out.len()))
            );
        }
    }
}
