//! The host API a Lua script sees: `tcp`, `http`, `dns`, `sleep`, `now`, `log`, `json`, `env`, `args`, `service`; every network call is a tokio future with a timeout, and every failure is raised as a Lua error with a plain message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use mlua::{AnyUserData, Function, Lua, LuaString, MultiValue, Table, UserData, Value, Variadic};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, error, info, warn};

use super::ScriptContext;
use crate::config::model::Network;
use crate::monitor::OUTPUT_CAP;
use crate::monitor::http::{DEFAULT_USER_AGENT, tls_config, tls_name};

/// Network calls wait this long unless the script passes `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// JSON nesting deeper than this is refused (and a table that contains itself).
const JSON_DEPTH: usize = 64;

/// Put one run's values (`args`, `opts`, `env`, `service`) into that run's
/// environment table.
pub(super) fn install_run(lua: &Lua, globals: &Table, context: &ScriptContext) -> mlua::Result<()> {
    globals.set(
        "args",
        lua.create_sequence_from(context.args.iter().cloned())?,
    )?;
    let opts = lua.create_table()?;
    for (key, value) in context.args.iter().filter_map(|a| a.split_once('=')) {
        opts.set(key, value)?;
    }
    globals.set("opts", opts)?;
    let env = lua.create_table()?;
    for (name, value) in &context.env {
        env.set(name.as_str(), value.as_str())?;
    }
    globals.set("env", env)?;
    let service = lua.create_table()?;
    service.set("group", context.group.as_str())?;
    service.set("name", context.service.as_str())?;
    globals.set("service", service)?;
    Ok(())
}

/// Put the run-independent API (`log`, `print`, `now`, `json`) into the
/// state's shared globals.
pub(super) fn install_shared(lua: &Lua, file_name: &str) -> mlua::Result<()> {
    let globals = lua.globals();

    let log = lua.create_table()?;
    for level in ["info", "warn", "error"] {
        let script = file_name.to_string();
        log.set(
            level,
            lua.create_function(move |_, words: Variadic<Value>| {
                let message = join_words(&words);
                match level {
                    "info" => info!(script = %script, "{message}"),
                    "warn" => warn!(script = %script, "{message}"),
                    _ => error!(script = %script, "{message}"),
                }
                Ok(())
            })?,
        )?;
    }
    let script = file_name.to_string();
    globals.set(
        "print",
        lua.create_function(move |_, words: Variadic<Value>| {
            info!(script = %script, "{}", join_words(&words));
            Ok(())
        })?,
    )?;
    globals.set("log", log)?;

    globals.set(
        "now",
        lua.create_function(|_, ()| {
            Ok(SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default())
        })?,
    )?;

    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|_, value: Value| {
            let json = to_json(&value, 0).map_err(mlua::Error::runtime)?;
            Ok(json.to_string())
        })?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, text: LuaString| {
            let json: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            from_json(lua, &json)
        })?,
    )?;
    globals.set("json", json)?;

    Ok(())
}

/// The one async entry point of the host API: `io(op, ...)`. The Lua side
/// of the API (`tcp.connect`, `conn:send`, `http.request`, `dns.resolve`,
/// `file.append`, `sleep`) is a thin prelude over it, because mlua compiles
/// a Lua wrapper for every async function it creates: one per state is
/// cheap, ten per run are not.
pub(super) fn io_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_async_function(|lua, (op, args): (String, MultiValue)| async move {
        match op.as_str() {
            "sleep" => {
                let seconds: f64 = lua.unpack_multi(args)?;
                tokio::time::sleep(seconds_to_duration(seconds)?).await;
                Ok(MultiValue::new())
            }
            "connect" => {
                let (host, port, options): (String, u16, Option<Table>) = lua.unpack_multi(args)?;
                let allowed = confinement(&lua).allow_networks;
                let conn = connect(host, port, options.as_ref(), &allowed).await?;
                lua.pack_multi(lua.create_userdata(conn)?)
            }
            "send" => {
                let (conn, data): (AnyUserData, LuaString) = lua.unpack_multi(args)?;
                let mut conn = conn.borrow_mut::<Conn>()?;
                let sent = conn.send(&data.as_bytes()).await?;
                lua.pack_multi(sent)
            }
            "read_line" => {
                let conn: AnyUserData = lua.unpack_multi(args)?;
                let mut conn = conn.borrow_mut::<Conn>()?;
                let line = conn.read_line().await?;
                lua.pack_multi(line.map(|l| lua.create_string(&l)).transpose()?)
            }
            "read" => {
                let (conn, max): (AnyUserData, Option<usize>) = lua.unpack_multi(args)?;
                let mut conn = conn.borrow_mut::<Conn>()?;
                let data = conn.read(max).await?;
                lua.pack_multi(data.map(|d| lua.create_string(&d)).transpose()?)
            }
            "http" => {
                let options: Table = lua.unpack_multi(args)?;
                let allowed = confinement(&lua).allow_networks;
                lua.pack_multi(http_request(&lua, &options, &allowed).await?)
            }
            "resolve" => {
                let (name, options): (String, Option<Table>) = lua.unpack_multi(args)?;
                lua.pack_multi(lua.create_sequence_from(resolve(&name, options.as_ref()).await?)?)
            }
            "append" => {
                let (path, text): (String, LuaString) = lua.unpack_multi(args)?;
                let dir = confinement(&lua).files_dir;
                let text = text.as_bytes().to_vec();
                let shown = path.clone();
                tokio::task::spawn_blocking(move || {
                    let dir = dir.ok_or_else(|| {
                        std::io::Error::other("file.append needs [lua] files_dir (or logdir)")
                    })?;
                    super::files::append_beneath(&dir, &path, &text)
                })
                .await
                .map_err(|e| mlua::Error::runtime(format!("append to {shown}: {e}")))?
                .map_err(|e| mlua::Error::runtime(format!("append to {shown}: {e}")))?;
                Ok(MultiValue::new())
            }
            other => Err(mlua::Error::runtime(format!("no such operation {other:?}"))),
        }
    })
}

/// `conn:close()` and `conn:set_timeout(s)`: synchronous, so plain functions.
pub(super) fn conn_functions(lua: &Lua) -> mlua::Result<(Function, Function)> {
    let close = lua.create_function(|_, conn: AnyUserData| {
        conn.borrow_mut::<Conn>()?.stream = None;
        Ok(())
    })?;
    let set_timeout = lua.create_function(|_, (conn, seconds): (AnyUserData, f64)| {
        conn.borrow_mut::<Conn>()?.timeout = seconds_to_duration(seconds)?;
        Ok(())
    })?;
    Ok((close, set_timeout))
}

/// The Lua half of the API, run once per state after the guards; its
/// arguments are [`io_function`] and [`conn_functions`]. The connection
/// metatable is protected (`getmetatable` gives `false`), because it is
/// shared by every run of a pooled state.
pub(super) const PRELUDE: &str = r#"
local io, close, set_timeout = ...
local setmetatable = setmetatable
local Conn = { __metatable = false }
Conn.__index = Conn
function Conn:send(data) return io("send", self[1], data) end
function Conn:read_line() return io("read_line", self[1]) end
function Conn:read(max) return io("read", self[1], max) end
function Conn:set_timeout(seconds) set_timeout(self[1], seconds) end
function Conn:close() close(self[1]) end
tcp = { connect = function(host, port, options)
  return setmetatable({ io("connect", host, port, options) }, Conn)
end }
http = { request = function(options) return io("http", options) end }
dns = { resolve = function(name, options) return io("resolve", name, options) end }
file = { append = function(path, text) return io("append", path, text) end }
function sleep(seconds) return io("sleep", seconds) end
"#;

async fn connect(
    host: String,
    port: u16,
    options: Option<&Table>,
    allowed: &[Network],
) -> mlua::Result<Conn> {
    let timeout = option_timeout(options)?;
    let connected = tokio::time::timeout(timeout, connect_allowed(&host, port, allowed))
        .await
        .map_err(|_| {
            mlua::Error::runtime(format!(
                "connect {host}:{port}: timed out after {}",
                crate::monitor::show_duration(timeout)
            ))
        })?
        .map_err(mlua::Error::runtime)?;
    Ok(Conn {
        stream: Some(BufReader::new(connected)),
        timeout,
        peer: format!("{host}:{port}"),
    })
}

async fn resolve(name: &str, options: Option<&Table>) -> mlua::Result<Vec<String>> {
    let timeout = option_timeout(options)?;
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((name, 0)))
        .await
        .map_err(|_| mlua::Error::runtime(format!("resolve {name}: timed out")))?
        .map_err(|e| mlua::Error::runtime(format!("resolve {name}: {e}")))?;
    let mut addresses: Vec<String> = Vec::new();
    for addr in found {
        let ip = addr.ip().to_string();
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    Ok(addresses)
}

async fn http_request(lua: &Lua, options: &Table, allowed: &[Network]) -> mlua::Result<Table> {
    let request = HttpRequest::from_table(options)?;
    let timeout = request.timeout;
    let url = request.url.clone();
    let response = tokio::time::timeout(timeout, request.send(allowed))
        .await
        .map_err(|_| {
            mlua::Error::runtime(format!(
                "{url}: timed out after {}",
                crate::monitor::show_duration(timeout)
            ))
        })?
        .map_err(|e| mlua::Error::runtime(format!("{url}: {e}")))?;
    let table = lua.create_table()?;
    table.set("status", response.status)?;
    let headers = lua.create_table()?;
    for (name, value) in response.headers {
        headers.set(name, lua.create_string(&value)?)?;
    }
    table.set("headers", headers)?;
    table.set("body", lua.create_string(&response.body)?)?;
    Ok(table)
}

/// A connected TCP stream (`tcp.connect`'s result).
struct Conn {
    /// `None` after `close()`.
    stream: Option<BufReader<TcpStream>>,
    timeout: Duration,
    peer: String,
}

impl Conn {
    fn stream(&mut self) -> mlua::Result<&mut BufReader<TcpStream>> {
        let peer = &self.peer;
        self.stream
            .as_mut()
            .ok_or_else(|| mlua::Error::runtime(format!("{peer}: connection is closed")))
    }

    fn timed_out(&self, what: &str) -> mlua::Error {
        mlua::Error::runtime(format!(
            "{what} {}: timed out after {}",
            self.peer,
            crate::monitor::show_duration(self.timeout)
        ))
    }

    fn failed(&self, what: &str, e: std::io::Error) -> mlua::Error {
        mlua::Error::runtime(format!("{what} {}: {e}", self.peer))
    }
}

impl UserData for Conn {}

impl Conn {
    async fn send(&mut self, data: &[u8]) -> mlua::Result<usize> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.stream()?.write_all(data)).await {
            Err(_) => Err(self.timed_out("send to")),
            Ok(Err(e)) => Err(self.failed("send to", e)),
            Ok(Ok(())) => Ok(data.len()),
        }
    }

    /// One line without its CR LF; `None` at EOF.
    async fn read_line(&mut self) -> mlua::Result<Option<Vec<u8>>> {
        let timeout = self.timeout;
        let mut line = Vec::new();
        let stream = self.stream()?;
        let read = tokio::time::timeout(
            timeout,
            (&mut *stream)
                .take(OUTPUT_CAP as u64)
                .read_until(b'\n', &mut line),
        )
        .await;
        match read {
            Err(_) => Err(self.timed_out("read from")),
            Ok(Err(e)) => Err(self.failed("read from", e)),
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(_)) => {
                while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    line.pop();
                }
                Ok(Some(line))
            }
        }
    }

    /// Whatever arrives, up to `max` bytes; `None` at EOF.
    async fn read(&mut self, max: Option<usize>) -> mlua::Result<Option<Vec<u8>>> {
        let timeout = self.timeout;
        let mut buffer = vec![0u8; max.unwrap_or(4096).clamp(1, OUTPUT_CAP)];
        let stream = self.stream()?;
        match tokio::time::timeout(timeout, stream.read(&mut buffer)).await {
            Err(_) => Err(self.timed_out("read from")),
            Ok(Err(e)) => Err(self.failed("read from", e)),
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(n)) => {
                buffer.truncate(n);
                Ok(Some(buffer))
            }
        }
    }
}

/// `http.request{...}`'s table, checked.
struct HttpRequest {
    method: Method,
    url: String,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    timeout: Duration,
    insecure: bool,
}

struct HttpResponse {
    status: u16,
    headers: BTreeMap<String, Vec<u8>>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn from_table(options: &Table) -> mlua::Result<HttpRequest> {
        let bad = |message: String| mlua::Error::runtime(format!("http.request: {message}"));
        let url: String = options
            .get::<Option<String>>("url")?
            .ok_or_else(|| bad("missing url".to_string()))?;
        let uri: Uri = url
            .parse()
            .map_err(|e| bad(format!("bad url {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(bad(format!("url {url:?} is not http:// or https://"))),
        }
        if uri.host().is_none() {
            return Err(bad(format!("url {url:?} has no host")));
        }
        let body: Option<LuaString> = options.get("body")?;
        let body = body.map(|b| Bytes::from(b.as_bytes().to_vec()));
        let method = match options.get::<Option<String>>("method")? {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad(format!("bad method {m:?}")))?,
            None if body.is_some() => Method::POST,
            None => Method::GET,
        };
        let mut headers = Vec::new();
        if let Some(table) = options.get::<Option<Table>>("headers")? {
            for pair in table.pairs::<String, String>() {
                let (name, value) = pair?;
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(format!("bad header name {name:?}")))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| bad(format!("bad value for header {name:?}")))?;
                headers.push((header, value));
            }
        }
        Ok(HttpRequest {
            method,
            url,
            uri,
            headers,
            body: body.unwrap_or_default(),
            timeout: option_timeout(Some(options))?,
            insecure: options.get::<Option<bool>>("insecure")?.unwrap_or(false),
        })
    }

    async fn send(self, allowed: &[Network]) -> Result<HttpResponse, String> {
        let tls = self.uri.scheme_str() == Some("https");
        let host = self.uri.host().unwrap_or_default();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = self.uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let stream = connect_allowed(&host, port, allowed).await?;
        if !tls {
            return self.exchange(stream).await;
        }
        let config = tls_config(self.insecure).await?;
        let name = tls_name(&host).to_string();
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| format!("bad TLS name {name:?}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, stream)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        self.exchange(stream).await
    }

    async fn exchange<S>(self, stream: S) -> Result<HttpResponse, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("http: {e}"))?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "lua http connection ended");
            }
        });
        let _abort = AbortOnDrop(driver);
        let authority = self
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let path = self
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let mut builder = Request::builder()
            .method(self.method)
            .uri(path)
            .header(HOST, authority)
            .header(USER_AGENT, DEFAULT_USER_AGENT);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(self.body))
            .map_err(|e| format!("bad request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        let mut body = response.into_body();
        let mut data = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("read body: {e}"))?;
            if let Some(chunk) = frame.data_ref() {
                let room = OUTPUT_CAP - data.len();
                data.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if data.len() >= OUTPUT_CAP {
                    break;
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body: data,
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a run may reach outside the sandbox, set for every run from the
/// `[lua]` settings (see `arm` in the runtime).
#[derive(Clone, Debug, Default)]
pub(crate) struct Confinement {
    pub files_dir: Option<std::path::PathBuf>,
    /// Empty: anywhere.
    pub allow_networks: Vec<Network>,
}

fn confinement(lua: &Lua) -> Confinement {
    lua.app_data_ref::<Confinement>()
        .map(|c| c.clone())
        .unwrap_or_default()
}

/// Resolve `host` and connect to the first address that `allowed` permits
/// (any when it is empty) and accepts. The check is on the resolved
/// address that is then connected to, so a name cannot be re-pointed in
/// between.
async fn connect_allowed(host: &str, port: u16, allowed: &[Network]) -> Result<TcpStream, String> {
    if allowed.is_empty() {
        return crate::monitor::tcp::connect(host, port).await;
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let permitted: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| allowed.iter().any(|n| n.contains(a.ip())))
        .collect();
    if permitted.is_empty() {
        let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
        return Err(format!(
            "{host} ({}) is outside [lua] allow_networks",
            shown.join(", ")
        ));
    }
    let mut last_error = String::new();
    for addr in permitted {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = format!("could not connect to {addr}: {e}"),
        }
    }
    Err(last_error)
}

/// `{ timeout = seconds }` from an options table, else [`DEFAULT_TIMEOUT`].
fn option_timeout(options: Option<&Table>) -> mlua::Result<Duration> {
    match options {
        Some(t) => match t.get::<Option<f64>>("timeout")? {
            Some(seconds) => seconds_to_duration(seconds),
            None => Ok(DEFAULT_TIMEOUT),
        },
        None => Ok(DEFAULT_TIMEOUT),
    }
}

fn seconds_to_duration(seconds: f64) -> mlua::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| mlua::Error::runtime(format!("bad number of seconds: {seconds}")))
}

fn join_words(words: &[Value]) -> String {
    words
        .iter()
        .map(|w| match w {
            Value::String(s) => s.to_string_lossy(),
            other => other
                .to_string()
                .unwrap_or_else(|_| other.type_name().to_string()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Lua value as JSON: a table with keys 1..n only is an array, any other
/// table an object (keys must be strings or numbers); an empty table is `{}`.
fn to_json(value: &Value, depth: usize) -> Result<serde_json::Value, String> {
    if depth > JSON_DEPTH {
        return Err(format!("json.encode: nested deeper than {JSON_DEPTH}"));
    }
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("json.encode: {n} is not a JSON number"))?,
        Value::String(s) => serde_json::Value::String(s.to_string_lossy()),
        Value::Table(t) => {
            let len = t.raw_len();
            let count = t.pairs::<Value, Value>().count();
            if len > 0 && count == len {
                let mut items = Vec::with_capacity(len);
                for item in t.sequence_values::<Value>() {
                    items.push(to_json(&item.map_err(|e| e.to_string())?, depth + 1)?);
                }
                serde_json::Value::Array(items)
            } else {
                let mut object = serde_json::Map::new();
                for pair in t.pairs::<Value, Value>() {
                    let (key, item) = pair.map_err(|e| e.to_string())?;
                    let key = match key {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(format!(
                                "json.encode: a {} cannot be an object key",
                                other.type_name()
                            ));
                        }
                    };
                    object.insert(key, to_json(&item, depth + 1)?);
                }
                serde_json::Value::Object(object)
            }
        }
        other => {
            return Err(format!(
                "json.encode: cannot encode a {}",
                other.type_name()
            ));
        }
    })
}

/// JSON as Lua values; `null` becomes `nil`.
fn from_json(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, from_json(lua, item)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(map) => {
            let table = lua.create_table_with_capacity(0, map.len())?;
            for (key, item) in map {
                table.raw_set(key.as_str(), from_json(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}
