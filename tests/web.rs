//! The web status page and HTTP API against the real daemon: every page and document answers, JSON shapes match docs/openapi.json, actions need a login, the right and the form's token, events arrive for a failing backend, and Debian's chromium renders the page (screenshots kept under target/tmp/web-screenshots/).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use common::daemon::{Fixture, closed_port};

const AUTH_CF: &str = "command section\nlist: all\nack: ann, robot\ndisable: ann, robot\nenable: ann, robot\ntest: ann\nlb: ann\n";

/// A daemon with the web listener, a userfile (ann and joe, password
/// "secret"), auth.cf (joe has no rights) and a token for "robot".
struct Web {
    f: Fixture,
    port: u16,
    up: Option<TcpListener>,
}

fn start(name: &str) -> Web {
    let mut f = Fixture::new(name);
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    let port = closed_port();
    let down_port = closed_port();
    let hash = pwhash::sha512_crypt::hash("secret").expect("hash");
    std::fs::write(
        f.dir.join("monusers.cf"),
        format!("ann:{hash}\njoe:{hash}\n"),
    )
    .expect("users");
    std::fs::write(f.dir.join("auth.cf"), AUTH_CF).expect("auth.cf");
    std::fs::write(
        f.dir.join("tokens"),
        format!("robot {}\n", keepmon::web::auth::token_hash("robot-token")),
    )
    .expect("tokens");
    f.write_config(
        up_port,
        down_port,
        &format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_file = \"tokens\"\n\n\
             [mon_protocol]\nlisten = \"127.0.0.1:{}\"\nauthfile = \"auth.cf\"\nuserfile = \"monusers.cf\"\nauthtype = [\"userfile\"]\n\n\
             [virtual_servers.www]\nlisten = \"127.0.0.1:{}\"\nhealth = \"local:up\"\nreal_servers = [{{ addr = \"127.0.0.1:{up_port}\" }}]\n\n\
             [virtual_servers.api]\nlisten = \"127.0.0.1:{}\"\nhealth = \"local:down\"\nreal_servers = [{{ addr = \"127.0.0.1:{down_port}\" }}]\n",
            closed_port(),
            closed_port(),
            closed_port()
        ),
    );
    f.start();
    f.wait_for(|f| f.opstatus("down") == "fail", "local/down fails");
    Web {
        f,
        port,
        up: Some(up),
    }
}

/// One HTTP/1.1 exchange: (status, headers, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, _, body) = http(port, "GET", path, &[], "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

impl Web {
    fn up_port(&self) -> u16 {
        self.up
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(0, |a| a.port())
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf token")
        + 19;
    page[start..start + 64].to_string()
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    serde_json::from_str(&text).expect("openapi is JSON")
}

/// Check `value` against a JSON schema of the OpenAPI file (the subset it
/// uses: $ref, allOf, oneOf, type, enum, required, properties, items).
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(
            spec,
            &spec["components"]["schemas"][name],
            value,
            at,
            errors,
        );
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(spec, s, value, at, errors);
        }
        return;
    }
    if let Some(any) = schema["oneOf"].as_array() {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            conforms(spec, s, value, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches no oneOf: {value}"));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty()
        && !types
            .iter()
            .any(|t| *t == kind || (*t == "number" && kind == "integer"))
    {
        errors.push(format!("{at}: {kind} is not {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} not in {allowed:?}"));
    }
    if let Value::Object(map) = value {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or("");
            if !map.contains_key(key) {
                errors.push(format!("{at}: missing \"{key}\""));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (key, sub) in props {
                if let Some(v) = map.get(key) {
                    conforms(spec, sub, v, &format!("{at}.{key}"), errors);
                }
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(spec, sub, item, &format!("{at}[{i}]"), errors);
        }
    }
}

fn check_shape(spec: &Value, path: &str, method: &str, status: &str, value: &Value) {
    let schema =
        &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{path} {method} {status} is not documented"
    );
    let mut errors = Vec::new();
    conforms(spec, schema, value, path, &mut errors);
    assert!(
        errors.is_empty(),
        "{path} {status} does not match docs/openapi.json:\n{}\n{value:#}",
        errors.join("\n")
    );
}

fn ack_of(f: &Fixture, service: &str) -> Value {
    let dump = f.dump();
    dump["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["service"] == service))
        .map(|s| s["ack"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn pages_and_documents_answer_in_the_documented_shapes() {
    let w = start("web-pages");
    let spec = openapi();
    let (status, head, page) = http(w.port, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    let down = page.find(">local/down<").expect("local/down listed");
    let up = page.find(">local/up<").expect("local/up listed");
    assert!(down < up, "the failing service comes first");
    assert!(
        page.contains("<tr class=\"failing\"><td><a href=\"/service/local/down\">"),
        "failing row is marked"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    let (status, _, service) = http(w.port, "GET", "/service/local/down", &[], "");
    assert_eq!(status, 200);
    assert!(
        service.contains("downtime log") && service.contains("went down"),
        "{service}"
    );
    assert!(service.contains("<svg class=\"chart\""), "the check chart");

    for path in [
        "/api/v1/status",
        "/api/v1/services",
        "/api/v1/lb",
        "/api/v1/vrrp",
        "/api/v1/history",
    ] {
        let value = get_json(w.port, path);
        check_shape(&spec, path, "get", "200", &value);
    }
    let services = get_json(w.port, "/api/v1/services");
    assert_eq!(services["services"][0]["service"], "down", "failing first");
    assert_eq!(services["services"][0]["failing"], true);
    let status = get_json(w.port, "/api/v1/status");
    let names = |v: &Value| -> Vec<String> {
        v["services"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{}/{}", s["group"], s["service"]))
            .collect()
    };
    assert_eq!(names(&status), names(&w.f.dump()), "status is dump --json");
    assert_eq!(
        status["daemon"]["pid"],
        w.f.daemon.as_ref().map(|c| c.id()).unwrap_or(0)
    );

    for (method, path, code) in [
        ("GET", "/nothing", 404),
        ("GET", "/service/local/nothing", 404),
        ("GET", "/action", 405),
    ] {
        let (status, _, body) = http(w.port, method, path, &[], "");
        assert_eq!(status, code, "{method} {path}");
        let value: Value = serde_json::from_str(&body).expect("errors are JSON");
        let mut errors = Vec::new();
        conforms(
            &spec,
            &spec["components"]["schemas"]["Error"],
            &value,
            path,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
    }
}

#[test]
fn actions_need_the_token_a_login_and_the_right() {
    let w = start("web-actions");
    let spec = openapi();
    let (_, _, page) = http(w.port, "GET", "/", &[], "");
    let csrf = csrf_of(&page);
    let form = |token: &str| {
        format!("csrf={token}&back=%2F&op=ack&group=local&service=down&comment=looking+at+it")
    };
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let ann = basic("ann", "secret");

    let refused = [
        (form(&"0".repeat(64)), Some(ann.clone()), 403, "csrf"),
        (
            "back=%2F&op=ack&group=local&service=down".to_string(),
            Some(ann.clone()),
            403,
            "csrf",
        ),
        (form(&csrf), None, 401, "unauthorized"),
        (
            form(&csrf),
            Some(basic("ann", "wrong")),
            401,
            "unauthorized",
        ),
        (form(&csrf), Some(basic("joe", "secret")), 403, "forbidden"),
    ];
    for (body, authorization, code, error) in refused {
        let mut headers = vec![form_type];
        if let Some(a) = &authorization {
            headers.push(("Authorization", a));
        }
        let (status, head, answer) = http(w.port, "POST", "/action", &headers, &body);
        assert_eq!(status, code, "{body} {authorization:?}: {answer}");
        let value: Value = serde_json::from_str(&answer).expect("JSON error");
        assert_eq!(value["error"]["code"], error);
        if code == 401 {
            assert!(
                head.contains("www-authenticate: Basic realm=\"keepmon\""),
                "{head}"
            );
        }
        assert_eq!(ack_of(&w.f, "down"), Value::Null, "nothing changed");
    }
    let (status, head, _) = http(
        w.port,
        "POST",
        "/action",
        &[form_type, ("Authorization", &ann)],
        &form(&csrf),
    );
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /\r\n") || head.ends_with("location: /"),
        "{head}"
    );
    assert_eq!(ack_of(&w.f, "down"), "ann: looking at it");

    // The API: a token acts as its user.
    let robot = "Bearer robot-token";
    let op = r#"{"op":"disable","group":"local","service":"up"}"#;
    for (authorization, code) in [
        (None, 401),
        (Some("Bearer wrong"), 401),
        (Some(ann.as_str()), 200),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = authorization {
            headers.push(("Authorization", a));
        }
        let (status, _, body) = http(w.port, "POST", "/api/v1/ops", &headers, op);
        assert_eq!(status, code, "{authorization:?}: {body}");
        let value: Value = serde_json::from_str(&body).expect("JSON");
        check_shape(&spec, "/api/v1/ops", "post", &code.to_string(), &value);
    }
    let enable = r#"{"op":"enable","group":"local","service":"up"}"#;
    let json = ("Content-Type", "application/json");
    let (status, _, body) = http(
        w.port,
        "POST",
        "/api/v1/ops",
        &[json, ("Authorization", robot)],
        enable,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["message"],
        "service local/up enabled"
    );
    let drain =
        r#"{"op":"lb","virtual_service":"www","real_server":"127.0.0.1:PORT","change":"drain"}"#
            .replace("PORT", &w.up_port().to_string());
    let (status, _, body) = http(
        w.port,
        "POST",
        "/api/v1/ops",
        &[json, ("Authorization", &ann)],
        &drain,
    );
    assert_eq!(status, 200, "{body}");
    let lb = get_json(w.port, "/api/v1/lb");
    let www = lb["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "www"))
        .expect("www");
    assert_eq!(www["real_servers"][0]["admin"], "drain", "{www}");
    // The page's weight form.
    let weight = format!(
        "csrf={csrf}&back=%2F&op=lb&virtual_service=www&real_server=127.0.0.1%3A{}&change=weight&weight=5",
        w.up_port()
    );
    let (status, _, body) = http(
        w.port,
        "POST",
        "/action",
        &[form_type, ("Authorization", &ann)],
        &weight,
    );
    assert_eq!(status, 303, "{body}");
    let lb = get_json(w.port, "/api/v1/lb");
    assert_eq!(lb["services"][1]["name"], "www");
    assert_eq!(lb["services"][1]["real_servers"][0]["weight"], 5, "{lb}");
    for (body, code, error) in [
        (drain.as_str(), 403, "forbidden"),
        (
            r#"{"op":"ack","group":"local","service":"nothing"}"#,
            409,
            "refused",
        ),
        (r#"{"op":"ack""#, 400, "bad_request"),
    ] {
        let (status, _, answer) = http(
            w.port,
            "POST",
            "/api/v1/ops",
            &[json, ("Authorization", robot)],
            body,
        );
        assert_eq!(status, code, "{body}: {answer}");
        let value: Value = serde_json::from_str(&answer).expect("JSON");
        assert_eq!(value["error"]["code"], error);
        check_shape(&spec, "/api/v1/ops", "post", &code.to_string(), &value);
    }
}

#[test]
fn events_arrive_when_a_backend_fails() {
    let mut w = start("web-events");
    w.f.wait_for(|f| f.opstatus("up") == "ok", "local/up is ok");
    let mut s = TcpStream::connect(("127.0.0.1", w.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // The backend goes away: the service fails and an event says so.
    w.up.take();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    let (mut service_down, mut member_down) = (false, false);
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(data) = line.trim().strip_prefix("data: ")
            && let Ok(event) = serde_json::from_str::<Value>(data)
        {
            service_down |=
                event["kind"] == "service" && event["service"] == "up" && event["failing"] == true;
            // The www virtual service's real server follows local/up.
            member_down |= event["kind"] == "lb"
                && event["virtual_service"] == "www"
                && event["health"] == "down";
            if service_down && member_down {
                return;
            }
        }
    }
    panic!(
        "no failing events for local/up (service {service_down}, www member {member_down}); stream so far:\n{seen}"
    );
}

/// Debian's chromium, or a loud "not run".
fn chromium() -> Option<PathBuf> {
    common::browser::chromium("web browser test")
}

/// Run headless chromium with a fresh profile; `args` add the action.
fn browse(browser: &std::path::Path, profile: &std::path::Path, args: &[&str]) -> String {
    common::browser::browse(browser, profile, "1280,1600", args)
}

#[test]
fn a_real_browser_renders_the_page_and_acks_from_it() {
    let Some(browser) = chromium() else {
        return;
    };
    let w = start("web-browser");
    w.f.wait_for(|f| f.opstatus("up") == "ok", "local/up is ok");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let profile = w.f.dir.join("chromium-profile");
    let base = format!("http://127.0.0.1:{}", w.port);

    let dom = browse(&browser, &profile, &["--dump-dom", &format!("{base}/")]);
    let first_row = dom
        .split("<tbody>")
        .nth(1)
        .and_then(|t| t.split("</tr>").next())
        .expect("a services table");
    assert!(
        first_row.contains("class=\"failing\"") && first_row.contains("local/down"),
        "{first_row}"
    );
    // The page's script refreshes it in place (after 5 s of the
    // browser's virtual time) without losing the table.
    let refreshed = browse(
        &browser,
        &profile,
        &[
            "--virtual-time-budget=7000",
            "--dump-dom",
            &format!("{base}/"),
        ],
    );
    assert!(
        refreshed.contains("<body data-refreshed=\"")
            && refreshed.contains("id=\"services\"")
            && !refreshed.contains("class=\"lost\""),
        "{refreshed}"
    );
    let main_png = shots.join("main.png");
    browse(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", main_png.display()),
            &format!("{base}/"),
        ],
    );
    assert!(
        std::fs::metadata(&main_png).is_ok_and(|m| m.len() > 10_000),
        "main page screenshot"
    );

    // Ack from the page's own form: a page the browser opens submits the
    // form as the user would, with the page's token and ann's login.
    let (_, _, page) = http(w.port, "GET", "/", &[], "");
    let csrf = csrf_of(&page);
    let submit = w.f.dir.join("submit.html");
    std::fs::write(
        &submit,
        format!(
            "<form method=\"post\" action=\"http://ann:secret@127.0.0.1:{}/action\">\
             <input name=\"csrf\" value=\"{csrf}\"><input name=\"back\" value=\"/service/local/down\">\
             <input name=\"op\" value=\"ack\"><input name=\"group\" value=\"local\">\
             <input name=\"service\" value=\"down\"><input name=\"comment\" value=\"from the browser\"></form>\
             <script>document.forms[0].submit()</script>",
            w.port
        ),
    )
    .expect("submit page");
    let after = browse(
        &browser,
        &profile,
        &[
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("file://{}", submit.display()),
        ],
    );
    assert_eq!(
        ack_of(&w.f, "down"),
        "ann: from the browser",
        "dom after submit:\n{after}"
    );
    assert!(
        after.contains("ann: from the browser"),
        "the service page shows the ack:\n{after}"
    );

    let service_png = shots.join("service.png");
    browse(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", service_png.display()),
            &format!("{base}/service/local/down"),
        ],
    );
    assert!(
        std::fs::metadata(&service_png).is_ok_and(|m| m.len() > 10_000),
        "service page screenshot"
    );
    browse(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", shots.join("main-acked.png").display()),
            &format!("{base}/"),
        ],
    );
    eprintln!("screenshots in {}", shots.display());
}
