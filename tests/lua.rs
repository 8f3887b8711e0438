//! Lua monitors and alerts: the shipped scripts against real servers on loopback (Debian's redis-server, SMTP and HTTP servers started here), the sandbox against each escape attempt, each per-run limit, reload of changed scripts, and the real daemon running `monitor lua:...` with a Lua alert.

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::daemon::Fixture;
use common::not_run;
use keepmon::alert::{AlertJob, AlertOutcome};
use keepmon::config::model::{Action, AlertLine, BuiltinPolicy, LuaLimits, Monitor};
use keepmon::lua::LuaSettings;
use keepmon::monitor::{HostStatus, RunOutput, RunRequest};
use keepmon::run;
use keepmon::service::{AlertDecision, AlertKind, OpStatus, Source};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// No test may run longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(60);

const UP: &str = "127.0.0.1";

// ----- helpers -----

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test exceeded its time limit")
}

/// A temp luadir for one test, removed on drop.
struct LuaDir(PathBuf);

impl LuaDir {
    fn new(name: &str) -> LuaDir {
        let dir = std::env::temp_dir().join(format!("keepmon-lua-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("temp dir");
        LuaDir(dir)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(format!("{name}.lua")), text).expect("write script");
    }

    fn settings(&self, limits: LuaLimits) -> LuaSettings {
        LuaSettings {
            luadir: vec![self.0.clone()],
            limits,
        }
    }
}

impl Drop for LuaDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn limits() -> LuaLimits {
    LuaSettings::default().limits
}

async fn run_lua(settings: &LuaSettings, script: &str, args: &[&str], hosts: &[&str]) -> RunOutput {
    let request = RunRequest {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        monitor: Monitor::Lua {
            script: script.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        },
        timeout: Duration::from_secs(20),
        env: vec![
            ("MON_GROUP".into(), "g".into()),
            ("MON_SERVICE".into(), "s".into()),
            ("SERVICE_VAR".into(), "from the service".into()),
        ],
        builtin_policy: BuiltinPolicy::Fallback,
        lua: settings.clone(),
        run_as: None,
    };
    run::monitor(&request, &AtomicU32::new(0)).await
}

fn reason(output: &RunOutput, host: usize) -> String {
    match &output.hosts[host].status {
        HostStatus::Fail { reason } => reason.clone(),
        other => panic!("host {host} did not fail: {other:?}\n{output:?}"),
    }
}

fn assert_all_ok(output: &RunOutput) {
    assert!(
        output.success() && output.hosts.iter().all(|h| h.is_ok()),
        "{output:?}"
    );
}

/// A one-line-per-request TCP server: `respond` gets what the client sent
/// (the head and the body of an HTTP request) and returns the answer.
async fn http_server(
    respond: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((UP, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let respond = Arc::new(respond);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let respond = respond.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, answer) = respond(&head, &body);
                log.lock().expect("lock").push(body);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                reader.get_mut().write_all(reply.as_bytes()).await.ok();
            });
        }
    });
    (port, seen)
}

/// An SMTP server that greets with `greeting` and answers EHLO with a
/// two-line 250 reply.
async fn smtp_server(greeting: &'static str) -> u16 {
    let listener = TcpListener::bind((UP, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                reader.get_mut().write_all(greeting.as_bytes()).await.ok();
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let answer: &[u8] = if line.starts_with("EHLO ") {
                        b"250-test.example greets you\r\n250 SIZE 1000000\r\n"
                    } else if line.starts_with("QUIT") {
                        b"221 bye\r\n"
                    } else {
                        b"502 what\r\n"
                    };
                    reader.get_mut().write_all(answer).await.ok();
                    line.clear();
                }
            });
        }
    });
    port
}

fn closed_port() -> u16 {
    common::daemon::closed_port()
}

/// Debian's redis-server on a loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        let binary = "/usr/bin/redis-server";
        if !std::path::Path::new(binary).exists() {
            not_run("redis_ping needs Debian's redis-server (apt-get install redis-server)");
            return None;
        }
        let port = closed_port();
        let dir = std::env::temp_dir().join(format!("keepmon-lua-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                UP,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((UP, port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn alert_job(script: &str, args: &[&str], settings: &LuaSettings) -> AlertJob {
    let action = Action::Lua {
        script: script.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    AlertJob {
        group: "web".into(),
        service: "http".into(),
        decision: AlertDecision {
            period: "wd {Sun-Sat}".into(),
            kind: AlertKind::Failure,
            source: Source::Monitor,
            alert: AlertLine {
                name: format!("lua:{script}"),
                exit: None,
                action,
            },
            exit: 1,
            stdin: "www2\nwww2: connection refused\n".into(),
            counts: true,
        },
        hosts: vec!["www1".into(), "www2".into()],
        time: 1_700_000_000,
        description: None,
        opstatus: OpStatus::Fail,
        env: vec![("SERVICE_VAR".into(), "x".into())],
        summary: "www2".into(),
        detail: "www2: connection refused\n".into(),
        lua: settings.clone(),
    }
}

async fn fire_lua(script: &str, args: &[&str], settings: &LuaSettings) -> AlertOutcome {
    run::alert(&alert_job(script, args, settings), Duration::from_secs(20)).await
}

// ----- shipped monitors against real servers -----

#[tokio::test]
async fn redis_ping_against_debian_redis_server() {
    let Some(redis) = Redis::start() else {
        return;
    };
    bounded(async {
        let settings = LuaSettings::default();
        let port = format!("port={}", redis.port);
        let out = run_lua(&settings, "redis_ping", &[&port], &[UP]).await;
        assert_all_ok(&out);

        let down = format!("port={}", closed_port());
        let out = run_lua(&settings, "redis_ping", &[&down], &[UP]).await;
        assert_eq!(out.summary, UP);
        let why = reason(&out, 0);
        assert!(
            why.starts_with("redis_ping.lua:") && why.contains("connect"),
            "{why}"
        );

        // A server that is not Redis answers something else than +PONG.
        let smtp = smtp_server("220 not redis\r\n").await;
        let out = run_lua(&settings, "redis_ping", &[&format!("port={smtp}")], &[UP]).await;
        assert_eq!(reason(&out, 0), "expected +PONG, got 220 not redis");
    })
    .await;
}

#[tokio::test]
async fn smtp_banner_greeting_and_ehlo() {
    bounded(async {
        let settings = LuaSettings::default();
        let good = smtp_server("220 test.example ESMTP ready\r\n").await;
        let out = run_lua(&settings, "smtp_banner", &[&format!("port={good}")], &[UP]).await;
        assert_all_ok(&out);

        let refusing = smtp_server("554 no service here\r\n").await;
        let out = run_lua(
            &settings,
            "smtp_banner",
            &[&format!("port={refusing}")],
            &[UP],
        )
        .await;
        assert_eq!(reason(&out, 0), "greeting: 554 no service here");
    })
    .await;
}

#[tokio::test]
async fn http_body_status_pattern_and_json_field() {
    bounded(async {
        let (port, _) = http_server(|head, _| {
            if head.starts_with("GET /health ") {
                (200, r#"{"status":"up","db":{"ok":true}}"#.to_string())
            } else {
                (503, "down for maintenance".to_string())
            }
        })
        .await;
        let settings = LuaSettings::default();
        let port = format!("port={port}");
        let check = |args: Vec<&'static str>| {
            let settings = settings.clone();
            let port = port.clone();
            async move {
                let mut all = vec![port.as_str()];
                all.extend(args);
                run_lua(&settings, "http_body", &all, &[UP]).await
            }
        };
        assert_all_ok(&check(vec!["path=/health", "match=up"]).await);
        assert_all_ok(&check(vec!["path=/health", "json=status=up"]).await);
        assert_all_ok(&check(vec!["path=/health", "json=db.ok=true"]).await);
        assert_eq!(
            reason(&check(vec!["path=/health", "json=status=down"]).await, 0),
            "status is up (expected down)"
        );
        assert_eq!(
            reason(&check(vec!["path=/health", "match=^nope"]).await, 0),
            "body does not match ^nope"
        );
        assert_eq!(
            reason(&check(vec!["path=/other"]).await, 0),
            "status 503 (expected 200)"
        );
        assert_all_ok(&check(vec!["path=/other", "status=503", "match=maintenance"]).await);
    })
    .await;
}

#[tokio::test]
async fn tcp_port_connects_sends_and_matches() {
    bounded(async {
        let settings = LuaSettings::default();
        let port = smtp_server("220 banner here\r\n").await;
        let p = format!("port={port}");
        assert_all_ok(&run_lua(&settings, "tcp_port", &[&p], &[UP]).await);
        assert_all_ok(&run_lua(&settings, "tcp_port", &[&p, "expect=^220"], &[UP]).await);
        let out = run_lua(
            &settings,
            "tcp_port",
            &[&p, "send=QUIT", "expect=^SSH"],
            &[UP],
        )
        .await;
        assert_eq!(
            reason(&out, 0),
            "reply \"220 banner here\" does not match ^SSH"
        );
        let closed = format!("port={}", closed_port());
        let out = run_lua(&settings, "tcp_port", &[&closed], &[UP]).await;
        assert!(
            reason(&out, 0).starts_with("tcp_port.lua:14: could not connect"),
            "{out:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn dns_query_resolves_names_from_etc_hosts() {
    bounded(async {
        let settings = LuaSettings::default();
        let out = run_lua(
            &settings,
            "dns_query",
            &["expect=127.0.0.1"],
            &["localhost"],
        )
        .await;
        assert_all_ok(&out);
        let out = run_lua(
            &settings,
            "dns_query",
            &["expect=127.0.0.9"],
            &["localhost"],
        )
        .await;
        let why = reason(&out, 0);
        assert!(
            why.starts_with("got ") && why.ends_with(", expected 127.0.0.9"),
            "{why}"
        );
    })
    .await;
}

// ----- shipped alerts -----

#[tokio::test]
async fn webhook_posts_the_alert_as_json() {
    bounded(async {
        let (port, seen) = http_server(|head, _| {
            if head.starts_with("POST /hook ") {
                (204, String::new())
            } else {
                (500, "no".to_string())
            }
        })
        .await;
        let settings = LuaSettings::default();
        let url = format!("url=http://{UP}:{port}/hook");
        let outcome = fire_lua("webhook", &[&url], &settings).await;
        assert!(outcome.ok, "{outcome:?}");
        let body = seen.lock().expect("lock").pop().expect("a request");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(json["kind"], "failure");
        assert_eq!(json["group"], "web");
        assert_eq!(json["service"], "http");
        assert_eq!(json["hosts"], serde_json::json!(["www1", "www2"]));
        assert_eq!(json["summary"], "www2");
        assert_eq!(json["time"], 1_700_000_000);

        let wrong = format!("url=http://{UP}:{port}/elsewhere");
        let outcome = fire_lua("webhook", &[&wrong], &settings).await;
        assert!(!outcome.ok);
        assert!(outcome.message.ends_with("answered 500"), "{outcome:?}");

        let outcome = fire_lua("webhook", &[], &settings).await;
        assert!(!outcome.ok);
        assert!(
            outcome.message.starts_with("webhook.lua:") && outcome.message.contains("needs url"),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn log_alert_appends_a_line() {
    bounded(async {
        let dir = LuaDir::new("logalert");
        let path = dir.0.join("alerts.log");
        let arg = format!("file={}", path.display());
        let mut settings = LuaSettings::default();
        settings.limits.files_dir = Some(dir.0.clone());
        for _ in 0..2 {
            let outcome = fire_lua("log", &[&arg], &settings).await;
            assert!(outcome.ok, "{outcome:?}");
        }
        let text = std::fs::read_to_string(&path).expect("log written");
        assert_eq!(
            text,
            "1700000000 failure web/http www1,www2: www2\n".repeat(2)
        );
    })
    .await;
}

/// A VRRP notify reaches a Lua alert as kind "vrrp" with the transition.
#[tokio::test]
async fn vrrp_notify_reaches_a_lua_alert_with_its_transition() {
    bounded(async {
        let dir = LuaDir::new("vrrpalert");
        let path = dir.0.join("vrrp.log");
        let arg = format!("file={}", path.display());
        let mut settings = LuaSettings::default();
        settings.limits.files_dir = Some(dir.0.clone());
        let mut job = alert_job("log", &[&arg], &settings);
        job.group = "vrrp".into();
        job.service = "VI_1".into();
        job.decision.kind = AlertKind::Up;
        job.summary = "director lb1 became MASTER for VI_1".into();
        job.env = vec![
            ("VRRP_INSTANCE".into(), "VI_1".into()),
            ("VRRP_STATE".into(), "MASTER".into()),
            ("VRRP_PREVIOUS_STATE".into(), "BACKUP".into()),
        ];
        let outcome = run::alert(&job, Duration::from_secs(20)).await;
        assert!(outcome.ok, "{outcome:?}");
        let text = std::fs::read_to_string(&path).expect("log written");
        assert!(
            text.contains(" vrrp vrrp/VI_1 ") && text.contains("became MASTER"),
            "{text}"
        );
    })
    .await;
}

// ----- the API -----

#[tokio::test]
async fn scripts_see_args_env_service_and_json() {
    bounded(async {
        let dir = LuaDir::new("context");
        dir.write(
            "context",
            r#"
local seen = table.concat({ args[1], opts.mode, env.SERVICE_VAR, service.group, service.name, #hosts }, "|")
local round = json.decode(json.encode({ a = { 1, 2, 3 }, b = "x" }))
function check(host)
  if round.a[3] ~= 3 or round.b ~= "x" then return false, "json round trip" end
  if type(now()) ~= "number" then return false, "now" end
  sleep(0.01)
  return false, host .. " " .. seen
end
"#,
        );
        let out = run_lua(&dir.settings(limits()), "context", &["mode=fast"], &["h1"]).await;
        assert_eq!(reason(&out, 0), "h1 mode=fast|fast|from the service|g|s|1");
    })
    .await;
}

#[tokio::test]
async fn a_thousand_checks_wait_together() {
    bounded(async {
        let dir = LuaDir::new("many");
        dir.write("many", "function check(host) sleep(0.5) return true end\n");
        let hosts: Vec<String> = (0..1000).map(|i| format!("h{i}")).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = run_lua(&dir.settings(limits()), "many", &[], &hosts).await;
        assert_all_ok(&out);
        assert_eq!(out.hosts.len(), 1000);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "1,000 half-second checks took {:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn changed_scripts_are_picked_up() {
    bounded(async {
        let dir = LuaDir::new("reload");
        let settings = dir.settings(limits());
        dir.write("v", "function check(h) return false, 'one' end\n");
        assert_eq!(reason(&run_lua(&settings, "v", &[], &[UP]).await, 0), "one");
        assert_eq!(reason(&run_lua(&settings, "v", &[], &[UP]).await, 0), "one");
        dir.write("v", "function check(h) return false, 'second' end\n");
        assert_eq!(
            reason(&run_lua(&settings, "v", &[], &[UP]).await, 0),
            "second"
        );
    })
    .await;
}

// ----- the sandbox -----

#[tokio::test]
async fn sandbox_escapes_are_refused() {
    bounded(async {
        let dir = LuaDir::new("escape");
        let marker = dir.0.join("escaped");
        let m = marker.display().to_string();
        // Each expression must raise an error or yield nil.
        let attempts = [
            format!("os.execute('touch {m}')"),
            format!("io.open('{m}', 'w')"),
            "require('socket')".to_string(),
            "package.loadlib('/lib/x86_64-linux-gnu/libc.so.6', 'system')".to_string(),
            "debug.getinfo(1)".to_string(),
            format!("dofile('{m}')"),
            format!("loadfile('{m}')"),
            "collectgarbage('stop')".to_string(),
            "string.dump(check)".to_string(),
            "assert(load(string.char(27) .. 'LuaT\\0'))".to_string(),
            "assert(load(string.char(27) .. 'LuaT', 'x', 'b'))".to_string(),
        ];
        let settings = dir.settings(limits());
        for attempt in attempts {
            dir.write(
                "escape",
                &format!("function check(host)\n  local r = {attempt}\n  return r == nil, 'escaped'\nend\n"),
            );
            let out = run_lua(&settings, "escape", &[], &[UP]).await;
            if let HostStatus::Fail { reason } = &out.hosts[0].status {
                assert!(
                    reason.starts_with("escape.lua:2:"),
                    "{attempt}: the reason names the script and line: {reason}"
                );
            }
            assert!(!marker.exists(), "{attempt} wrote a file");
        }
        // A text chunk through load runs in the sandbox too.
        dir.write(
            "escape",
            "function check(host)\n  return load('return os == nil and io == nil')(), 'load'\nend\n",
        );
        assert_all_ok(&run_lua(&settings, "escape", &[], &[UP]).await);
    })
    .await;
}

#[tokio::test]
async fn globals_do_not_leak_between_runs_or_scripts() {
    bounded(async {
        let dir = LuaDir::new("leak");
        let settings = dir.settings(limits());
        dir.write(
            "counter",
            "runs = (runs or 0) + 1\npcall(function() string.leak = 'set' end)\nfunction check(h) return false, tostring(runs) end\n",
        );
        dir.write(
            "peek",
            "function check(h) return false, tostring(runs) .. ' ' .. tostring(string.leak) end\n",
        );
        for _ in 0..2 {
            assert_eq!(reason(&run_lua(&settings, "counter", &[], &[UP]).await, 0), "1");
        }
        assert_eq!(reason(&run_lua(&settings, "peek", &[], &[UP]).await, 0), "nil nil");
    })
    .await;
}

/// A pooled state is reused: the runs after the first prepare no new state.
fn prepared(dir: &LuaDir, script: &str) -> u64 {
    keepmon::lua::prepared_states(&dir.0.join(format!("{script}.lua")))
}

#[tokio::test]
async fn a_reused_state_starts_each_run_with_fresh_globals() {
    bounded(async {
        let dir = LuaDir::new("reuse");
        let settings = dir.settings(limits());
        // Globals set by the main chunk, by check(), through _G, rawset and
        // load() must all be gone in the next run on the same state.
        dir.write(
            "g",
            "local seen = table.concat({ tostring(main_global), tostring(in_check), tostring(via_g),\n\
             tostring(via_rawset), tostring(via_load), tostring(check_before) }, ' ')\n\
             main_global = 1\n\
             check_before = check\n\
             function check(h)\n\
               in_check = 1\n\
               _G.via_g = 1\n\
               rawset(_G, 'via_rawset', 1)\n\
               load('via_load = 1')()\n\
               assert(_G == _ENV and via_load == 1 and via_rawset == 1)\n\
               return false, seen\n\
             end\n",
        );
        for run in 0..4 {
            let out = run_lua(&settings, "g", &[], &[UP]).await;
            assert_eq!(reason(&out, 0), "nil nil nil nil nil nil", "run {run}");
        }
        assert_eq!(prepared(&dir, "g"), 1, "the runs after the first reuse its state");
    })
    .await;
}

#[tokio::test]
async fn a_script_cannot_change_the_shared_libraries() {
    bounded(async {
        let dir = LuaDir::new("tamper");
        let settings = dir.settings(limits());
        // Run with arg "tamper": every attempt to change what runs share.
        // Every run then checks that the shared parts are untouched.
        dir.write(
            "t",
            r#"local attempts = {
  function() string.upper = function() return "evil" end end,
  function() rawset(string, "upper", function() return "evil" end) end,
  function() getmetatable("").__index = { upper = function() return "evil" end } end,
  function() setmetatable(string, { __index = function() return "evil" end }) end,
  function() table.insert = nil end,
  function() rawset(table, "concat", nil) end,
  function() math.pi = 3 end,
  function() coroutine.resume = nil end,
  function() tcp.connect = nil end,
  function() json.encode = nil end,
  function() log.info = nil end,
  function() setmetatable(_G, nil) end,
  function() getmetatable(_G).__index = nil end,
  function() local mt = getmetatable(_G); mt.__index.string = nil end,
  function() for k, v in pairs(string) do rawset(string, k, nil) end end,
  function() local _, real = pairs(string); real.upper = nil end,
  function() _G = nil; _G.string = nil end,
}
local changed = {}
if args[1] == "tamper" then
  for i, attempt in ipairs(attempts) do
    local ok = pcall(attempt)
    if ok then changed[#changed + 1] = tostring(i) end
  end
end
function check(h)
  local intact = ("x"):upper() == "X" and string.upper("y") == "Y"
    and type(table.insert) == "function" and type(table.concat) == "function"
    and math.pi > 3.14 and type(coroutine.resume) == "function"
    and type(tcp.connect) == "function" and type(json.encode) == "function"
    and type(log.info) == "function" and type(print) == "function" and os == nil
    and getmetatable("") == false and getmetatable(string) == false
  if not intact then return false, "shared libraries changed" end
  if #changed > 0 then return false, "attempts succeeded: " .. table.concat(changed, " ") end
  return true
end
"#,
        );
        for run in 0..3 {
            let out = run_lua(&settings, "t", &["tamper"], &[UP]).await;
            assert_all_ok(&out);
            let out = run_lua(&settings, "t", &[], &[UP]).await;
            assert!(out.success(), "run {run}: {out:?}");
        }
        assert_eq!(
            prepared(&dir, "t"),
            1,
            "every run used the one pooled state"
        );
    })
    .await;
}

#[tokio::test]
async fn a_state_that_hit_a_limit_is_not_reused() {
    bounded(async {
        let dir = LuaDir::new("spoiled");
        let settings = dir.settings(LuaLimits {
            instructions: 1_000_000,
            memory_bytes: 8 << 20,
            timeout: Duration::from_millis(500),
            files_dir: None,
            allow_networks: Vec::new(),
        });
        dir.write(
            "s",
            "function check(h)\n\
               if args[1] == 'spin' then while true do end end\n\
               if args[1] == 'hog' then local t = {} while true do t[#t + 1] = string.rep('x', 100000) .. #t end end\n\
               if args[1] == 'sleep' then sleep(30) end\n\
               if args[1] == 'error' then error('plain') end\n\
               return true\n\
             end\n",
        );
        assert_all_ok(&run_lua(&settings, "s", &[], &[UP]).await);
        assert_all_ok(&run_lua(&settings, "s", &[], &[UP]).await);
        assert_eq!(prepared(&dir, "s"), 1);
        // A plain script error leaves the state reusable.
        assert_eq!(reason(&run_lua(&settings, "s", &["error"], &[UP]).await, 0), "s.lua:5: plain");
        assert_all_ok(&run_lua(&settings, "s", &[], &[UP]).await);
        assert_eq!(prepared(&dir, "s"), 1);
        // Each limit drops the state: the next run prepares a new one, with
        // its limits armed afresh.
        let mut expected = 1;
        for (arg, why) in [
            ("spin", "instruction budget"),
            ("hog", "out of memory"),
            ("sleep", ""),
        ] {
            let out = run_lua(&settings, "s", &[arg], &[UP]).await;
            assert!(!out.success(), "{arg}: {out:?}");
            if why.is_empty() {
                assert!(out.timed_out, "{arg}: {out:?}");
            } else {
                assert!(reason(&out, 0).contains(why), "{arg}: {out:?}");
            }
            assert_all_ok(&run_lua(&settings, "s", &[], &[UP]).await);
            expected += 1;
            assert_eq!(prepared(&dir, "s"), expected, "after {arg}");
        }
    })
    .await;
}

// ----- limits and faults -----

#[tokio::test]
async fn an_endless_loop_exhausts_the_instruction_budget() {
    bounded(async {
        let dir = LuaDir::new("loop");
        let settings = dir.settings(LuaLimits {
            instructions: 1_000_000,
            ..limits()
        });
        dir.write("spin", "function check(h)\n  while true do end\nend\n");
        let out = run_lua(&settings, "spin", &[], &[UP]).await;
        assert_eq!(
            reason(&out, 0),
            "spin.lua:2: instruction budget of 1000000 exhausted"
        );

        // pcall cannot catch its way past the limit.
        dir.write(
            "sly",
            "function check(h)\n  while true do pcall(function() while true do end end) end\nend\n",
        );
        let out = run_lua(&settings, "sly", &[], &[UP]).await;
        assert!(reason(&out, 0).contains("instruction budget"), "{out:?}");

        // Nor can a coroutine of the script's own.
        dir.write(
            "co",
            "function check(h)\n  local co = coroutine.create(function() while true do end end)\n  while true do coroutine.resume(co) end\nend\n",
        );
        let out = run_lua(&settings, "co", &[], &[UP]).await;
        assert!(reason(&out, 0).contains("instruction budget"), "{out:?}");
    })
    .await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    bounded(async {
        let dir = LuaDir::new("memory");
        let settings = dir.settings(LuaLimits {
            memory_bytes: 8 << 20,
            ..limits()
        });
        dir.write(
            "hog",
            "function check(h)\n  local t = {}\n  while true do t[#t + 1] = string.rep('x', 100000) .. #t end\nend\n",
        );
        let out = run_lua(&settings, "hog", &[], &[UP]).await;
        let why = reason(&out, 0);
        assert!(why.starts_with("hog.lua") && why.contains("out of memory"), "{why}");

        dir.write("big", "function check(h)\n  return string.rep('x', 100 * 1024 * 1024)\nend\n");
        let why = reason(&run_lua(&settings, "big", &[], &[UP]).await, 0);
        assert!(why.contains("memory"), "{why}");
    })
    .await;
}

#[tokio::test]
async fn slow_and_busy_scripts_stop_at_the_timeout() {
    bounded(async {
        let dir = LuaDir::new("timeout");
        let settings = dir.settings(LuaLimits {
            timeout: Duration::from_millis(500),
            instructions: u64::MAX,
            ..limits()
        });
        dir.write("slow", "function check(h) sleep(30) return true end\n");
        let started = Instant::now();
        let out = run_lua(&settings, "slow", &[], &[UP, "127.0.0.2"]).await;
        assert!(out.timed_out, "{out:?}");
        assert!(
            out.hosts.iter().all(|h| h.status == HostStatus::Timeout),
            "{out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));

        dir.write("busy", "function check(h)\n  while true do end\nend\n");
        let out = run_lua(&settings, "busy", &[], &[UP]).await;
        assert_eq!(reason(&out, 0), "busy.lua:2: run timed out");
    })
    .await;
}

#[tokio::test]
async fn errors_and_garbage_fail_the_check_with_script_and_line() {
    bounded(async {
        let dir = LuaDir::new("faults");
        let settings = dir.settings(limits());
        let cases = [
            ("function check(h)\n  error('boom')\nend\n", "f.lua:2: boom"),
            (
                "function check(h)\n  return h.nothing.here\nend\n",
                "f.lua:2: attempt to index a nil value (field 'nothing')",
            ),
            (
                "\nfunction check(h)\n  return 42\nend\n",
                "f.lua:2: check() returned the number 42; expected true, or false and a reason",
            ),
            (
                "function check(h)\nend\n",
                "f.lua:1: check() returned nothing; expected true, or false and a reason",
            ),
            (
                "function check(h)\n  local c = tcp.connect('127.0.0.1', 0, { timeout = 1 })\nend\n",
                "f.lua:2: could not connect to 127.0.0.1:0",
            ),
            ("function check(h)\n  error({ code = 1 })\nend\n", "f.lua: table: "),
            ("function check(h)\n  return h .. f(h)\nend\nfunction f(h) return f(h) .. h end\n", "f.lua: out of memory"),
            ("x = 1\n", "f.lua: the script defines no check() function"),
            ("error('at load')\n", "f.lua:1: at load"),
        ];
        for (script, expected) in cases {
            dir.write("f", script);
            let out = run_lua(&settings, "f", &[], &[UP]).await;
            assert!(!out.success());
            let why = reason(&out, 0);
            assert!(why.starts_with(expected), "{script}: {why}");
        }

        dir.write("f", "function check(h) return true\n");
        let out = run_lua(&settings, "f", &[], &[UP]).await;
        assert!(out.config_error, "a syntax error is a config error: {out:?}");
        assert!(
            out.summary.contains("f.lua:2: 'end' expected"),
            "{out:?}"
        );

        let out = run_lua(&settings, "nosuch", &[], &[UP]).await;
        assert!(out.config_error && out.exit == 127, "{out:?}");

        // After all of that the runtime still works.
        dir.write("f", "function check(h) return true end\n");
        assert_all_ok(&run_lua(&settings, "f", &[], &[UP]).await);
    })
    .await;
}

#[tokio::test]
async fn failing_alerts_name_the_script_and_line() {
    bounded(async {
        let dir = LuaDir::new("alertfaults");
        let settings = dir.settings(LuaLimits {
            instructions: 100_000,
            ..limits()
        });
        let cases = [
            ("function alert(e)\n  error('nope')\nend\n", "a.lua:2: nope"),
            ("function alert(e)\n  return false, 'refused'\nend\n", "a.lua: refused"),
            (
                "function alert(e)\n  return 'yes'\nend\n",
                "a.lua:1: alert() returned a string",
            ),
            ("function alert(e)\n  while true do end\nend\n", "a.lua:2: instruction budget"),
            ("x = 1\n", "a.lua: the script defines no alert() function"),
        ];
        for (script, expected) in cases {
            dir.write("a", script);
            let outcome = fire_lua("a", &[], &settings).await;
            assert!(!outcome.ok);
            assert!(outcome.message.starts_with(expected), "{script}: {outcome:?}");
        }
        dir.write(
            "a",
            "function alert(e)\n  if e.kind == 'failure' and e.hosts[2] == 'www2' and e.summary == 'www2' then return true end\n  return false, 'bad event'\nend\n",
        );
        let outcome = fire_lua("a", &[], &settings).await;
        assert!(outcome.ok, "{outcome:?}");
    })
    .await;
}

/// Regression (issue 19, finding 5): `file.append` wrote anywhere as root
/// (any absolute path, through symlinks), and Lua could connect anywhere.
/// Now it writes only beneath `[lua] files_dir`, never through a symlink,
/// and `allow_networks` bounds `tcp.connect` and `http.request`.
#[tokio::test]
async fn file_append_stays_beneath_files_dir_and_connects_stay_in_allow_networks() {
    bounded(async {
        let dir = LuaDir::new("confined");
        let files = dir.0.join("files");
        let outside = dir.0.join("outside");
        std::fs::create_dir_all(&files).expect("files dir");
        std::fs::create_dir_all(&outside).expect("outside dir");
        std::os::unix::fs::symlink(&outside, files.join("link")).expect("symlink");
        dir.write(
            "w",
            "function check(host)\n  file.append(args[1], 'line\\n')\n  return true\nend\n",
        );
        dir.write(
            "c",
            "function check(host)\n  tcp.connect(host, tonumber(args[1]), { timeout = 2 }):close()\n  return true\nend\n",
        );
        let mut limits = limits();
        limits.files_dir = Some(files.clone());
        limits.allow_networks = vec![keepmon::config::model::Network::parse("127.0.0.2").expect("net")];
        let settings = dir.settings(limits.clone());

        assert_all_ok(&run_lua(&settings, "w", &["ok.log"], &[UP]).await);
        let inside = files.join("inside.log").display().to_string();
        assert_all_ok(&run_lua(&settings, "w", &[&inside], &[UP]).await);
        assert_eq!(std::fs::read_to_string(files.join("ok.log")).expect("written"), "line\n");
        let escape = outside.join("x.log").display().to_string();
        for (path, why) in [
            (escape.as_str(), "outside [lua] files_dir"),
            ("link/x.log", "symlink"),
            ("../outside/x.log", "\"..\""),
        ] {
            let out = run_lua(&settings, "w", &[path], &[UP]).await;
            let reason = reason(&out, 0);
            assert!(reason.contains(why), "{path}: {reason}");
        }
        assert!(
            std::fs::read_dir(&outside).expect("outside").next().is_none(),
            "nothing written outside files_dir"
        );

        let listener = TcpListener::bind((UP, 0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        let out = run_lua(&settings, "c", &[&port], &[UP]).await;
        assert!(
            reason(&out, 0).contains("outside [lua] allow_networks"),
            "{out:?}"
        );
        limits.allow_networks = vec![keepmon::config::model::Network::parse("127.0.0.0/8").expect("net")];
        assert_all_ok(&run_lua(&dir.settings(limits), "c", &[&port], &[UP]).await);
    })
    .await;
}

// ----- the daemon -----

#[test]
fn daemon_runs_a_lua_monitor_and_a_lua_alert() {
    let mut f = Fixture::new("lua");
    let d = f.dir.display().to_string();
    let up = std::net::TcpListener::bind((UP, 0)).expect("bind");
    let port = up.local_addr().expect("addr").port();
    f.write_script(
        "lua/porttest.lua",
        "local port = tonumber(opts.port)\nfunction check(host)\n  tcp.connect(host, port, { timeout = 1 }):close()\n  return true\nend\n",
    );
    f.write_mon_cf(&format!(
        "luadir = {d}/lua\nlua_files_dir = {d}\nstatedir = {d}/state\nlogdir = {d}/log\n\nhostgroup local 127.0.0.1\n\nwatch local\n    service lua\n        interval 1s\n        monitor lua:porttest port={port}\n        period\n            alert lua:log file={d}/alerts.txt\n            upalert lua:log file={d}/alerts.txt\n            alertevery 1h\n"
    ));
    f.start();
    f.wait_for(|f| f.opstatus("lua") == "ok", "the lua monitor passes");
    drop(up);
    f.wait_for(
        |f| {
            std::fs::read_to_string(f.dir.join("alerts.txt"))
                .is_ok_and(|t| t.contains(" failure local/lua 127.0.0.1: 127.0.0.1"))
        },
        "the lua alert logs the failure",
    );
    assert_eq!(f.opstatus("lua"), "fail");
    let dump = f.dump();
    let text = dump.to_string();
    assert!(
        text.contains("porttest.lua:3:"),
        "the detail names the script line: {text}"
    );
}
