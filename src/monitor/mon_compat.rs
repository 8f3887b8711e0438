//! mon's shipped `tcp.monitor`, `http.monitor`, `fping.monitor` and `ping.monitor` as built-in checks: parses their options exactly as the scripts do; never runs them.
//!
//! Option parsing follows each script: Perl's `Getopt::Std` for tcp, http
//! and fping (options stop at the first non-option word; later words are
//! hosts; unknown letters are ignored with a warning as the scripts ignore
//! `getopts`'s return value; a value of `0` or `""` means the default, as
//! Perl's `$opt || default` does), GNU `getopt` for ping (options anywhere).
//!
//! What matches Debian's scripts (mon 1.2/1.3): the exit value for the
//! same up/down hosts, and the summary line — the failing hosts,
//! space-separated, sorted as Perl's `sort`, empty when all pass.
//!
//! Deliberate differences (the detail lines are always keepmon's own
//! `host: ok|fail: reason|timeout` lines):
//!
//! | script | difference |
//! |---|---|
//! | all | hosts are checked in parallel, not one after another; names resolve to IPv6 too |
//! | `tcp.monitor` | none in behaviour: `-p port` (23), `-t secs` (10), connect only |
//! | `http.monitor` | HTTP/1.1 with `Connection: close` instead of HTTP/1.0; the `Host` header carries `:port` when the port is not 80 (RFC 9110; the script sends the bare host); accepted statuses 200, 301, 302, 401 as the script's `/^HTTP\/[\d.]+\s+(200\|30[12]\|401)\b/`; `-m` uses Rust regex syntax (no backreferences or look-around: such a pattern is refused and the script runs instead) with Perl's `/s`, matched against the status line, headers (names in Title-Case: hyper does not keep the server's spelling) and body, and replaces the status check as in the script; `-o` (omit headers of healthy hosts from the detail) is accepted and has nothing to omit; `-p` takes a number or `http` |
//! | `fping.monitor` | `-r R -t T` becomes R+1 echo requests each waiting T ms, without fping's ×1.5 back-off; `-T` (traceroute failed hosts) is accepted and ignored; `-s` and `-a` as the script (a slow host fails but does not count as unreachable for `-a`); an unresolvable host exits 1 (fping: 2) |
//! | `ping.monitor` | `-c N` becomes up to N echo requests each waiting 10 s (iputils sends them 1 s apart and waits 10 s after the last); the summary is sorted (the script keeps argument order); no hosts is success (the script exits 1 "ping: no hosts found") |

use std::time::Duration;

use thiserror::Error;
use tracing::warn;

use super::{Builtin, BuiltinCheck, BuiltinOptions};
use crate::config::model::{HttpCheck, PingCheck, TcpCheck};

/// Why a script's arguments have no built-in equivalent.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CompatError {
    #[error("option -{option} needs a value")]
    MissingValue { option: char },
    #[error("option -{option}: {value:?} is not {expected}")]
    BadValue {
        option: char,
        value: String,
        expected: &'static str,
    },
    #[error("option -{option} is not supported by the built-in equivalent")]
    Unsupported { option: char },
    #[error("unknown option -{option}")]
    UnknownOption { option: char },
}

/// The built-in equivalent of a mon.d script invoked as `name args...`:
/// `None` when keepmon has none for `name`, `Err` when the arguments cannot
/// be expressed (the caller then runs the script if it has one).
pub fn builtin_equivalent(name: &str, args: &[String]) -> Option<Result<Builtin, CompatError>> {
    Some(match name {
        "tcp.monitor" => tcp_monitor(args),
        "http.monitor" => http_monitor(args),
        "fping.monitor" => fping_monitor(args),
        "ping.monitor" => ping_monitor(args),
        _ => return None,
    })
}

/// `tcp.monitor [-p port] [-t secs] host...`: connect only.
fn tcp_monitor(args: &[String]) -> Result<Builtin, CompatError> {
    let opts = getopt_std("tcp.monitor", "p:t:", args)?;
    let port = opts.number('p', 1, u16::MAX.into())?.unwrap_or(23);
    let timeout = opts.number('t', 1, u32::MAX.into())?.unwrap_or(10);
    Ok(Builtin {
        check: BuiltinCheck::Tcp(TcpCheck {
            port: port as u16,
            send: None,
            expect: None,
            timeout: Duration::from_secs(timeout),
        }),
        options: BuiltinOptions::default(),
        arg_hosts: opts.rest,
    })
}

/// `http.monitor [-p port] [-t secs] [-u url] [-a agent] [-m regex] [-o] host...`.
fn http_monitor(args: &[String]) -> Result<Builtin, CompatError> {
    let opts = getopt_std("http.monitor", "p:t:u:a:m:o", args)?;
    let port = match opts.value('p') {
        Some("http") => 80,
        _ => opts.number('p', 1, u16::MAX.into())?.unwrap_or(80) as u16,
    };
    let timeout = opts.number('t', 1, u32::MAX.into())?.unwrap_or(30);
    let path = match opts.value('u') {
        Some(url) if url.starts_with('/') && !url.contains(char::is_whitespace) => url,
        Some(url) => {
            return Err(CompatError::BadValue {
                option: 'u',
                value: url.to_string(),
                expected: "a path starting with \"/\"",
            });
        }
        None => "/",
    };
    let regex = opts.value('m');
    if let Some(re) = regex
        && regex::Regex::new(re).is_err()
    {
        return Err(CompatError::BadValue {
            option: 'm',
            value: re.to_string(),
            expected: "a regex keepmon understands",
        });
    }
    let status = if regex.is_some() {
        // With -m the script ignores the status code: the regex decides.
        vec![(100, 999)]
    } else {
        vec![(200, 200), (301, 302), (401, 401)]
    };
    Ok(Builtin {
        check: BuiltinCheck::Http(HttpCheck {
            tls: false,
            port,
            method: "GET".to_string(),
            path: path.to_string(),
            host_header: None,
            status,
            body: regex.map(|re| format!("(?s){re}")),
            timeout: Duration::from_secs(timeout),
            insecure: false,
            digest: None,
            more_urls: Vec::new(),
        }),
        options: BuiltinOptions {
            match_whole_response: regex.is_some(),
            user_agent: Some(opts.value('a').unwrap_or("mon.d/http.monitor").to_string()),
            ..BuiltinOptions::default()
        },
        arg_hosts: opts.rest,
    })
}

/// `fping.monitor [-a] [-r retries] [-s slow_ms] [-t retry_ms] [-T] host...`.
fn fping_monitor(args: &[String]) -> Result<Builtin, CompatError> {
    let opts = getopt_std("fping.monitor", "ahr:s:t:T", args)?;
    if opts.flag('h') {
        return Err(CompatError::Unsupported { option: 'h' });
    }
    let retries = opts.number('r', 0, 1000)?.unwrap_or(3);
    let retry_ms = opts.number('t', 1, u32::MAX.into())?.unwrap_or(2000);
    let slow_ms = opts.number('s', 0, u32::MAX.into())?;
    Ok(Builtin {
        check: BuiltinCheck::Ping(PingCheck {
            count: retries as u32 + 1,
            timeout: Duration::from_millis(retry_ms),
        }),
        options: BuiltinOptions {
            fail_only_if_all_fail: opts.flag('a'),
            slow: slow_ms.map(Duration::from_millis),
            ..BuiltinOptions::default()
        },
        arg_hosts: opts.rest,
    })
}

/// `ping.monitor [-c count] [-6] host...` (GNU getopt: options anywhere).
fn ping_monitor(args: &[String]) -> Result<Builtin, CompatError> {
    let mut count = 1u32;
    let mut ipv6_only = false;
    let mut hosts = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            hosts.extend(words.by_ref().cloned());
            break;
        }
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
            hosts.push(word.clone());
            continue;
        };
        let mut letters = letters.chars();
        while let Some(letter) = letters.next() {
            match letter {
                '6' => ipv6_only = true,
                'c' => {
                    let attached: String = letters.by_ref().collect();
                    let value = if attached.is_empty() {
                        words
                            .next()
                            .cloned()
                            .ok_or(CompatError::MissingValue { option: 'c' })?
                    } else {
                        attached
                    };
                    count = parse_number('c', &value, 1, 1000)? as u32;
                }
                option => return Err(CompatError::UnknownOption { option }),
            }
        }
    }
    Ok(Builtin {
        check: BuiltinCheck::Ping(PingCheck {
            count,
            // iputils ping waits 10 s for a reply when none has come (-W default).
            timeout: Duration::from_secs(10),
        }),
        options: BuiltinOptions {
            ipv6_only,
            ..BuiltinOptions::default()
        },
        arg_hosts: hosts,
    })
}

/// Options parsed the way Perl's `Getopt::Std::getopts` does.
#[derive(Debug, Default, PartialEq, Eq)]
struct Opts {
    /// Last value wins, as with the Perl hash.
    values: Vec<(char, Option<String>)>,
    /// Words after the options: hosts, for mon's scripts.
    rest: Vec<String>,
}

impl Opts {
    fn flag(&self, option: char) -> bool {
        self.values.iter().any(|(o, _)| *o == option)
    }

    /// The value of `-option`; `None` when absent or empty (Perl: false).
    fn value(&self, option: char) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(o, _)| *o == option)
            .and_then(|(_, v)| v.as_deref())
            .filter(|v| !v.is_empty())
    }

    /// A numeric value in `low..=high`; `None` when absent or `0`, as
    /// `$opt{x} || default` treats both.
    fn number(&self, option: char, low: u64, high: u64) -> Result<Option<u64>, CompatError> {
        match self.value(option) {
            None => Ok(None),
            Some(value) => {
                let n = parse_number(option, value, 0, high)?;
                if n == 0 {
                    return Ok(None);
                }
                if n < low {
                    return Err(CompatError::BadValue {
                        option,
                        value: value.to_string(),
                        expected: "in range",
                    });
                }
                Ok(Some(n))
            }
        }
    }
}

fn parse_number(option: char, value: &str, low: u64, high: u64) -> Result<u64, CompatError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| CompatError::BadValue {
            option,
            value: value.to_string(),
            expected: "a number in range",
        })
}

/// `Getopt::Std::getopts(spec)`: a letter followed by `:` takes a value
/// (attached or the next word); letters bundle (`-ao`); `--` ends options;
/// the first word not starting with `-` (or a lone `-`) ends options.
/// Unknown letters are skipped with a warning, as the scripts ignore
/// `getopts`'s failure.
fn getopt_std(script: &str, spec: &str, args: &[String]) -> Result<Opts, CompatError> {
    let takes_value = |c: char| {
        spec.find(c)
            .map(|i| spec[i + c.len_utf8()..].starts_with(':'))
    };
    let mut opts = Opts::default();
    let mut index = 0;
    while index < args.len() {
        let word = &args[index];
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break;
        };
        index += 1;
        if letters == "-" {
            break;
        }
        for (at, letter) in letters.char_indices() {
            match takes_value(letter) {
                Some(true) => {
                    let attached = &letters[at + letter.len_utf8()..];
                    let value = if attached.is_empty() {
                        let next = args
                            .get(index)
                            .cloned()
                            .ok_or(CompatError::MissingValue { option: letter })?;
                        index += 1;
                        next
                    } else {
                        attached.to_string()
                    };
                    opts.values.push((letter, Some(value)));
                    break;
                }
                Some(false) => opts.values.push((letter, None)),
                None => {
                    warn!(
                        script,
                        option = %letter,
                        "unknown option ignored (as the script does)"
                    );
                }
            }
        }
    }
    opts.rest = args[index..].to_vec();
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    fn equivalent(name: &str, args: &str) -> Builtin {
        builtin_equivalent(name, &words(args))
            .expect("has an equivalent")
            .expect("arguments understood")
    }

    fn error(name: &str, args: &str) -> CompatError {
        builtin_equivalent(name, &words(args))
            .expect("has an equivalent")
            .expect_err("arguments refused")
    }

    #[test]
    fn only_the_four_scripts_have_equivalents() {
        for name in [
            "tcp.monitor",
            "http.monitor",
            "fping.monitor",
            "ping.monitor",
        ] {
            assert!(builtin_equivalent(name, &[]).is_some(), "{name}");
        }
        for name in ["smtp.monitor", "tcp", "telnet.monitor", "http"] {
            assert!(builtin_equivalent(name, &[]).is_none(), "{name}");
        }
    }

    #[test]
    fn getopt_std_like_perl() {
        /// (arguments, options seen, rest)
        type Case<'a> = (&'a str, &'a [(char, Option<&'a str>)], &'a str);
        let cases: &[Case] = &[
            ("", &[], ""),
            ("-p 80 web1 web2", &[('p', Some("80"))], "web1 web2"),
            ("-p80 -t5", &[('p', Some("80")), ('t', Some("5"))], ""),
            ("-op 8080 h", &[('o', None), ('p', Some("8080"))], "h"),
            ("-- -p 80", &[], "-p 80"),
            ("h -p 80", &[], "h -p 80"),
            ("- -p 80", &[], "- -p 80"),
            ("-x -p 1", &[('p', Some("1"))], ""),
            ("-p 1 -p 2", &[('p', Some("1")), ('p', Some("2"))], ""),
        ];
        for (args, values, rest) in cases {
            let got = getopt_std("t", "p:t:o", &words(args)).expect(args);
            let values: Vec<(char, Option<String>)> = values
                .iter()
                .map(|(c, v)| (*c, v.map(str::to_string)))
                .collect();
            assert_eq!(
                got,
                Opts {
                    values,
                    rest: words(rest)
                },
                "{args}"
            );
        }
        assert_eq!(
            getopt_std("t", "p:", &words("-p")),
            Err(CompatError::MissingValue { option: 'p' })
        );
    }

    #[test]
    fn tcp_monitor_options() {
        let b = equivalent("tcp.monitor", "");
        let BuiltinCheck::Tcp(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!((check.port, check.timeout), (23, Duration::from_secs(10)));
        let b = equivalent("tcp.monitor", "-p 8080 -t 3 extra");
        let BuiltinCheck::Tcp(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!((check.port, check.timeout), (8080, Duration::from_secs(3)));
        assert_eq!(b.arg_hosts, words("extra"));
        // Perl's `$opt{p} || 23`: zero means the default.
        let b = equivalent("tcp.monitor", "-p 0 -t 0");
        assert_eq!(
            b.check,
            BuiltinCheck::Tcp(TcpCheck {
                port: 23,
                send: None,
                expect: None,
                timeout: Duration::from_secs(10)
            })
        );
        assert!(matches!(
            error("tcp.monitor", "-p telnet"),
            CompatError::BadValue { option: 'p', .. }
        ));
        assert!(matches!(
            error("tcp.monitor", "-p 70000"),
            CompatError::BadValue { option: 'p', .. }
        ));
    }

    #[test]
    fn http_monitor_options() {
        let b = equivalent("http.monitor", "");
        assert_eq!(
            b.check,
            BuiltinCheck::Http(HttpCheck {
                tls: false,
                port: 80,
                method: "GET".to_string(),
                path: "/".to_string(),
                host_header: None,
                status: vec![(200, 200), (301, 302), (401, 401)],
                body: None,
                timeout: Duration::from_secs(30),
                insecure: false,
                digest: None,
                more_urls: Vec::new(),
            })
        );
        assert_eq!(b.options.user_agent.as_deref(), Some("mon.d/http.monitor"));
        assert!(!b.options.match_whole_response);

        let b = equivalent(
            "http.monitor",
            "-p 8080 -t 5 -u /health -a probe -m ok.*done -o",
        );
        let BuiltinCheck::Http(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!(check.port, 8080);
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert_eq!(check.path, "/health");
        assert_eq!(check.body.as_deref(), Some("(?s)ok.*done"));
        assert_eq!(check.status, vec![(100, 999)]);
        assert!(b.options.match_whole_response);
        assert_eq!(b.options.user_agent.as_deref(), Some("probe"));

        assert_eq!(
            equivalent("http.monitor", "-p http").check,
            equivalent("http.monitor", "").check
        );
        assert!(matches!(
            error("http.monitor", "-u http://x/"),
            CompatError::BadValue { option: 'u', .. }
        ));
        assert!(matches!(
            error("http.monitor", "-m (a)\\1"),
            CompatError::BadValue { option: 'm', .. }
        ));
    }

    #[test]
    fn fping_monitor_options() {
        let b = equivalent("fping.monitor", "");
        assert_eq!(
            b.check,
            BuiltinCheck::Ping(PingCheck {
                count: 4,
                timeout: Duration::from_millis(2000)
            })
        );
        assert_eq!(b.options, BuiltinOptions::default());
        let b = equivalent("fping.monitor", "-a -r 1 -t 500 -s 200 -T");
        assert_eq!(
            b.check,
            BuiltinCheck::Ping(PingCheck {
                count: 2,
                timeout: Duration::from_millis(500)
            })
        );
        assert!(b.options.fail_only_if_all_fail);
        assert_eq!(b.options.slow, Some(Duration::from_millis(200)));
        // `-r 0` is Perl-false: the default 3 retries.
        let b = equivalent("fping.monitor", "-r 0");
        let BuiltinCheck::Ping(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!(check.count, 4);
        assert_eq!(
            error("fping.monitor", "-h"),
            CompatError::Unsupported { option: 'h' }
        );
    }

    #[test]
    fn ping_monitor_options() {
        let b = equivalent("ping.monitor", "");
        assert_eq!(
            b.check,
            BuiltinCheck::Ping(PingCheck {
                count: 1,
                timeout: Duration::from_secs(10)
            })
        );
        let b = equivalent("ping.monitor", "h1 -c 3 -6 h2");
        let BuiltinCheck::Ping(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!(check.count, 3);
        assert!(b.options.ipv6_only);
        assert_eq!(b.arg_hosts, words("h1 h2"));
        let b = equivalent("ping.monitor", "-6c2 -- -h");
        let BuiltinCheck::Ping(check) = &b.check else {
            panic!("{b:?}")
        };
        assert_eq!(check.count, 2);
        assert_eq!(b.arg_hosts, words("-h"));
        assert_eq!(
            error("ping.monitor", "-x"),
            CompatError::UnknownOption { option: 'x' }
        );
        assert_eq!(
            error("ping.monitor", "-c"),
            CompatError::MissingValue { option: 'c' }
        );
    }
}
