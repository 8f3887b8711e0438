//! Unit tests of the haproxy.cfg front end: `defaults` inheritance, detection, and messages at their lines.

use std::path::Path;

use crate::config::model::{Config, Format, LbScheduler, ProxyMode};
use crate::config::{FileSystem, compile_str};

struct NoFiles;

impl FileSystem for NoFiles {
    fn is_file(&self, _: &Path) -> bool {
        false
    }

    fn is_dir(&self, _: &Path) -> bool {
        false
    }
}

fn compile(text: &str) -> Result<Config, String> {
    compile_str(text, Path::new("/h/haproxy.cfg"), Format::Haproxy, &NoFiles)
        .map(|c| c.config)
        .map_err(|e| e.diagnostics.to_string())
}

#[test]
fn defaults_are_inherited_as_haproxy_does() {
    let text = "\
defaults base
    mode http
    timeout connect 3s
defaults
    balance leastconn
listen a
    bind 127.0.0.1:1001
    server s 127.0.0.1:2001
listen b from base
    bind 127.0.0.1:1002
    server s 127.0.0.1:2002
defaults child from base
    retries 7
listen c from child
    bind 127.0.0.1:1003
    server s 127.0.0.1:2003
";
    let c = compile(text).unwrap();
    let (a, b, vc) = (
        &c.virtual_servers["a"],
        &c.virtual_servers["b"],
        &c.virtual_servers["c"],
    );
    // An unnamed defaults resets: `a` has no http mode, no 3s connect.
    assert_eq!(a.proxy.mode, ProxyMode::Tcp);
    assert_eq!(a.scheduler, LbScheduler::WeightedLeastConnection);
    assert_eq!(a.connect_timeout.as_secs(), 5, "keepmon's default");
    assert_eq!(b.proxy.mode, ProxyMode::Http);
    assert_eq!(b.connect_timeout.as_secs(), 3);
    assert_eq!(b.scheduler, LbScheduler::WeightedRoundRobin);
    assert_eq!((vc.proxy.mode, vc.retries), (ProxyMode::Http, 7));
    assert_eq!(vc.connect_timeout.as_secs(), 3);
}

#[test]
fn default_server_applies_to_later_servers() {
    let text = "\
backend be
    default-server inter 5s rise 4 fall 1 weight 9
    server s1 127.0.0.1:2001 check
    server s2 127.0.0.1:2002 check weight 2
frontend fe
    bind 127.0.0.1:1001
    default_backend be
";
    let c = compile(text).unwrap();
    let vs = &c.virtual_servers["fe"];
    let weights: Vec<u32> = vs.real_servers.iter().map(|r| r.weight).collect();
    assert_eq!(weights, [9, 2]);
    let svc = c.service(vs.health.as_ref().unwrap()).unwrap();
    assert_eq!(svc.interval.map(|d| d.as_secs()), Some(5));
    assert_eq!((svc.rise, svc.fall), (4, 1));
}

#[test]
fn mistakes_are_errors_at_their_lines() {
    let cases = [
        (
            "listen a\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2 chek\n",
            "/h/haproxy.cfg:3:26: error: 'server s' : unknown keyword 'chek'; did you mean 'check' maybe ?",
        ),
        (
            "frontend f from nowhere\n    bind :1\n",
            "/h/haproxy.cfg:1:17: error: defaults section 'nowhere' not found for frontend 'f'",
        ),
        (
            "backend b\nbackend b\n",
            "/h/haproxy.cfg:2:1: error: backend 'b' has the same name as backend 'b' declared at /h/haproxy.cfg:1:1",
        ),
        (
            "frontend f\n    bind :1\n    default_backend x\n",
            "/h/haproxy.cfg:3:5: error: Proxy 'f': unable to find required default_backend: 'x'",
        ),
        (
            "bind :80\n",
            "/h/haproxy.cfg:1:1: error: unknown keyword 'bind' out of section",
        ),
    ];
    for (text, expected) in cases {
        let got = compile(text).unwrap_err();
        assert!(got.contains(expected), "{text}\n--- got ---\n{got}");
    }
}

#[test]
fn detection_by_name_and_first_keyword() {
    use crate::config::{detect_format, detect_format_of};
    assert_eq!(
        detect_format(Path::new("/etc/haproxy/haproxy.cfg")),
        Format::Haproxy
    );
    assert_eq!(
        detect_format_of(Path::new("lb.cfg"), "# x\n\nfrontend f\n"),
        Format::Haproxy
    );
    assert_eq!(
        detect_format_of(Path::new("lb.cfg"), "watch x\n"),
        Format::Mon
    );
    assert_eq!(
        detect_format_of(Path::new("mon.cf"), "global\n"),
        Format::Mon,
        "only .cfg files are recognised by content"
    );
}

/// Only `/h/ca/*.pem` exists.
struct CaFiles;

impl FileSystem for CaFiles {
    fn is_file(&self, path: &Path) -> bool {
        path.starts_with("/h/ca") && path.extension().is_some_and(|e| e == "pem")
    }

    fn is_dir(&self, _: &Path) -> bool {
        false
    }
}

#[test]
fn ssl_on_server_lines_is_tls_to_the_servers_verified_as_haproxy_verifies() {
    use crate::config::model::{Monitor, ServerTls};
    use std::path::PathBuf;
    let with = |global: &str, server: &str, check: &str| {
        let text = format!(
            "global\n{global}defaults\n    mode http\n{check}listen l\n    bind 127.0.0.1:8080\n    server a 127.0.0.1:8443 check {server}\n"
        );
        compile_str(
            &text,
            Path::new("/h/haproxy.cfg"),
            Format::Haproxy,
            &CaFiles,
        )
        .map(|c| c.config)
        .map_err(|e| e.diagnostics.to_string())
    };
    let tls_of = |c: &Config| c.virtual_servers["l"].proxy.http.server_tls.clone();
    let c = with("", "ssl verify none", "").unwrap();
    assert_eq!(
        tls_of(&c),
        Some(ServerTls {
            ca_file: None,
            sni: None,
            verify_host: None
        })
    );
    let c = with(
        "    ca-base /h/ca\n",
        "ssl verify required ca-file site.pem sni str(app.test) verifyhost x.test",
        "    option httpchk GET /health\n",
    )
    .unwrap();
    assert_eq!(
        tls_of(&c),
        Some(ServerTls {
            ca_file: Some(PathBuf::from("/h/ca/site.pem")),
            sni: Some("app.test".into()),
            verify_host: Some("x.test".into())
        })
    );
    match &c.watches["l"].services["check"].monitor {
        Some(Monitor::Http(check)) => assert!(check.tls && check.insecure, "checks go over TLS"),
        other => panic!("{other:?}"),
    }
    // `ssl-server-verify none` makes `verify none` the default.
    let c = with("    ssl-server-verify none\n", "ssl", "").unwrap();
    assert_eq!(tls_of(&c).and_then(|t| t.ca_file), None);
    assert_eq!(tls_of(&with("", "", "").unwrap()), None, "no ssl: clear");
    for (server, expected) in [
        (
            "ssl",
            "haproxy.cfg:6:5: error: 'server l/a' : verify is enabled by default but no CA file specified.",
        ),
        (
            "ssl verify required ca-file /h/nope.pem",
            "error: 'server l/a' : Couldn't open the ca-file '/h/nope.pem' (No such file or directory).",
        ),
        (
            "ssl verify maybe",
            "error: 'server a' : 'verify' : unknown verify method 'maybe', only 'none' and 'required' are supported.",
        ),
        (
            "ssl verify none sni req.hdr(host)",
            "keepmon cannot run this as HAProxy does: the sni expression 'req.hdr(host)'",
        ),
    ] {
        let got = with("", server, "").unwrap_err();
        assert!(got.contains(expected), "{server}\n--- got ---\n{got}");
    }
    let tcp = "defaults\n    mode tcp\nlisten l\n    bind 127.0.0.1:8080\n    server a 127.0.0.1:8443 ssl verify none\n";
    let got = compile(tcp).unwrap_err();
    assert!(
        got.contains("keepmon cannot run this as HAProxy does: TLS to a server ('ssl' on a server line) in mode tcp"),
        "{got}"
    );
    let mixed = "defaults\n    mode http\nlisten l\n    bind 127.0.0.1:8080\n    server a 127.0.0.1:8443 ssl verify none\n    server b 127.0.0.1:8080\n";
    let got = compile(mixed).unwrap_err();
    assert!(
        got.contains(
            "haproxy.cfg:6:5: error: keepmon cannot run this as HAProxy does: TLS settings"
        ),
        "{got}"
    );
}

#[test]
fn hashing_balance_runs_haproxys_map_with_its_hash_type() {
    use crate::config::model::{HaproxyHash, HashFunction, HashOn};
    let text = "\
defaults
    mode http
    hash-type map-based djb2 avalanche
listen src
    bind 127.0.0.1:1001
    balance source
    hash-type map-based
    server s 127.0.0.1:2001
listen uri
    bind 127.0.0.1:1002
    balance uri
    server s 127.0.0.1:2002
listen hdr
    bind 127.0.0.1:1003
    balance hdr(X-User)
    hash-type map-based crc32
    server s 127.0.0.1:2003
";
    let c = compile(text).unwrap();
    let scheduler = |name: &str| c.virtual_servers[name].scheduler;
    assert_eq!(
        scheduler("src"),
        LbScheduler::Haproxy(HaproxyHash::default())
    );
    assert_eq!(
        scheduler("uri"),
        LbScheduler::Haproxy(HaproxyHash {
            consistent: false,
            function: HashFunction::Djb2,
            avalanche: true
        }),
        "inherited from defaults"
    );
    assert_eq!(
        scheduler("hdr"),
        LbScheduler::Haproxy(HaproxyHash {
            consistent: false,
            function: HashFunction::Crc32,
            avalanche: false
        })
    );
    let consistent = compile(
        "listen a\n    bind 127.0.0.1:1\n    balance source\n    hash-type consistent\n    server s 127.0.0.1:2\n",
    )
    .unwrap();
    assert_eq!(
        consistent.virtual_servers["a"].scheduler,
        LbScheduler::Haproxy(HaproxyHash::CONSISTENT),
        "consistent without a function word: sdbm with avalanche"
    );
    assert_eq!(
        c.virtual_servers["hdr"].proxy.http.hash,
        Some(HashOn::Header("x-user".into()))
    );
}

#[test]
fn hash_type_mistakes_and_what_keepmon_does_not_run() {
    let cases = [
        (
            "listen a\n    bind 127.0.0.1:1\n    hash-type map-based md5\n    server s 127.0.0.1:2\n",
            "/h/haproxy.cfg:3:25: error: 'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions",
        ),
        (
            "listen a\n    bind 127.0.0.1:1\n    hash-type weird\n    server s 127.0.0.1:2\n",
            "/h/haproxy.cfg:3:5: error: 'hash-type' only supports 'consistent' and 'map-based'",
        ),
        (
            "listen a\n    mode http\n    bind 127.0.0.1:1\n    balance uri whole\n    server s 127.0.0.1:2\n",
            "/h/haproxy.cfg:4:17: error: keepmon cannot run this as HAProxy does: 'balance uri whole'",
        ),
    ];
    for (text, expected) in cases {
        let got = compile(text).unwrap_err();
        assert!(got.contains(expected), "{text}\n--- got ---\n{got}");
    }
}

const ROUTING: &str = "\
defaults
    mode http
    timeout connect 1s
frontend www
    bind 127.0.0.1:8080
    bind 127.0.0.1:8443
    acl is_api hdr(host) -i api.example.com
    acl is_api path_beg /api/
    use_backend api if is_api || { src 10.0.0.0/8 }
    use_backend api unless { method GET }
    default_backend web
frontend other
    bind 127.0.0.1:9090
    default_backend web
backend api
    balance leastconn
    server a1 127.0.0.1:9001 check
backend web
    server w1 127.0.0.1:9002
";

#[test]
fn use_backend_makes_pools_and_routes() {
    use crate::config::model::{AclFetch, AclMatch};
    let c = compile(ROUTING).unwrap();
    // Each backend once, as a pool; both binds of `www` route to them.
    let api = &c.virtual_servers["api"];
    assert_eq!(api.listen, None);
    assert_eq!(api.scheduler, LbScheduler::WeightedLeastConnection);
    assert_eq!(api.health.as_ref().unwrap().to_string(), "api:check");
    assert_eq!(c.virtual_servers["web"].listen, None);
    for name in ["www", "www#2"] {
        let www = &c.virtual_servers[name];
        assert!(www.real_servers.is_empty(), "{name}");
        let routes: Vec<(&str, bool, usize)> = www
            .proxy
            .routes
            .iter()
            .map(|r| (r.to.as_str(), r.when.unless, r.when.any.len()))
            .collect();
        // The default backend comes last, unconditionally.
        assert_eq!(
            routes,
            [("api", false, 2), ("api", true, 1), ("web", false, 0)]
        );
        let is_api = &www.proxy.routes[0].when.any[0][0].acl;
        assert_eq!(is_api.name.as_deref(), Some("is_api"));
        assert_eq!(is_api.tests.len(), 2, "two acl lines of one name");
        assert_eq!(is_api.tests[0].fetch, AclFetch::Header("host".into()));
        assert!(is_api.tests[0].ignore_case);
        assert_eq!(is_api.tests[1].how, AclMatch::Beg);
    }
    // A frontend that does not route uses the pool of its default backend
    // too, so the backend's servers are listed once.
    let other = &c.virtual_servers["other"];
    assert!(other.real_servers.is_empty());
    assert_eq!(other.proxy.routes.len(), 1);
    assert_eq!(c.virtual_servers.len(), 5);
}

#[test]
fn a_backend_without_routes_stays_inside_its_frontend() {
    let c = compile(&ROUTING.replace("    use_backend", "    #use_backend")).unwrap();
    assert_eq!(c.virtual_servers.len(), 3, "www, www#2, other");
    assert_eq!(c.virtual_servers["www"].real_servers.len(), 1);
    assert!(c.virtual_servers["www"].proxy.routes.is_empty());
}

#[test]
fn use_backend_targets_are_checked_as_haproxy_does() {
    let err =
        compile(&ROUTING.replace("use_backend api unless", "use_backend nope unless")).unwrap_err();
    assert!(
        err.contains(":10:5: error: Proxy 'www': unable to find required use_backend: 'nope'"),
        "{err}"
    );
    let tcp = ROUTING.replace("backend api\n", "backend api\n    mode tcp\n");
    let err = compile(&tcp).unwrap_err();
    assert!(
        err.contains(
            ":9:5: error: http frontend 'www' (haproxy.cfg:4) tries to use incompatible tcp backend 'api' (haproxy.cfg:15) in a 'use_backend' rule (see 'mode')"
        ),
        "{err}"
    );
    let in_backend = ROUTING.replace(
        "    server w1",
        "    acl x path /x\n    use_backend api if x\n    server w1",
    );
    let err = compile(&(in_backend + "    use_backend api if nope\n")).unwrap_err();
    assert!(
        err.contains("'use_backend' ignored because backend 'web' has no frontend capability"),
        "{err}"
    );
    assert!(err.contains("no such ACL : 'nope'"), "{err}");
}

#[test]
fn tcp_mode_switches_by_source_only() {
    let text = "\
defaults
    mode tcp
frontend db
    bind 127.0.0.1:5432
    use_backend b if { src 10.0.0.0/8 }
    use_backend b if { src 10.0.0.0/8 } { path_beg /x }
    default_backend a
backend a
    server a 127.0.0.1:1
backend b
    server b 127.0.0.1:2
";
    let err = compile(text).unwrap_err();
    assert!(
        err.contains(":6:5: error: keepmon cannot run this as HAProxy does: a 'use_backend' condition on more than 'src' in mode tcp"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let c = compile(&text.replace("    use_backend b if { src 10.0.0.0/8 } {", "    #")).unwrap();
    let db = &c.virtual_servers["db"];
    assert_eq!(db.proxy.mode, ProxyMode::Tcp);
    assert_eq!(db.proxy.routes.len(), 2, "b by source, then a");
    assert_eq!(c.virtual_servers["a"].listen, None);
}

#[test]
fn a_server_without_a_port_needs_one_port_to_borrow() {
    let one_bind =
        "defaults\n    mode http\nlisten l\n    bind 127.0.0.1:8080\n    server a 127.0.0.1\n";
    let c = compile(one_bind).unwrap();
    assert_eq!(
        c.virtual_servers["l"].real_servers[0].addr,
        "127.0.0.1:8080".parse().unwrap(),
        "the one bind port"
    );
    let routed = "defaults\n    mode http\nfrontend f\n    bind 127.0.0.1:8080\n    use_backend b if { path_beg /b }\n    default_backend d\nbackend b\n    server a 127.0.0.1\nbackend d\n    server z 127.0.0.1:9000\n";
    let got = compile(routed).unwrap_err();
    assert!(
        got.contains("/h/haproxy.cfg:8:5: error: keepmon cannot run this as HAProxy does: a server without a port where clients may arrive on several ports (several bind addresses, or a backend that use_backend rules reach)"),
        "{got}"
    );
}
