//! The `keepmon` command line: parses what the user typed and runs it; owns no monitoring logic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use keepmon::config::{self, Compiled, Format};
use keepmon::control::proto::{LbChange, Request, Response, Target, TestWhat};
use keepmon::{daemonize, render, supervisor};

/// The config used when `-c` is not given: the demo in etc/keepmon.toml,
/// built into the binary. Its relative paths are under the current directory.
const EMBEDDED_CONFIG: &str = include_str!("../etc/keepmon.toml");
const EMBEDDED_NAME: &str = "keepmon.toml";
/// The config of an installed keepmon (the Debian package's conffile).
const INSTALLED_CONFIG: &str = "/etc/keepmon/keepmon.toml";

#[derive(Parser, Debug)]
#[command(
    name = "keepmon",
    version,
    about = "Monitoring, alerts, load-balancer tables and VRRP failover for a Linux director, in one daemon",
    long_about = "keepmon watches services like mon (and reads mon.cf unchanged), fires alerts, \
                  steers traffic through its own proxy, IPVS or nftables, and moves the virtual IP \
                  with VRRP. Without -c it uses /etc/keepmon/keepmon.toml when that exists, \
                  else the built-in demo config (etc/keepmon.toml)."
)]
struct Cli {
    /// Config file: `.toml` is native; a name containing `keepalived`, or a
    /// file starting with a keepalived block (global_defs, vrrp_instance,
    /// virtual_server, vrrp_script, vrrp_sync_group), is keepalived.conf;
    /// anything else is read as mon.cf.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Override the format chosen by the file name and contents.
    #[arg(long, global = true, value_enum)]
    format: Option<FormatArg>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Mon,
    Toml,
    Keepalived,
    Haproxy,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogArg {
    Auto,
    Stderr,
    Journal,
    Syslog,
}

#[derive(Subcommand, Debug)]
enum LbCommand {
    /// The tables, like `ipvsadm -Ln` (with health and admin state).
    Show {
        #[arg(long)]
        json: bool,
        /// Totals per real server instead (like `ipvsadm -Ln --stats`):
        /// connections, failed attempts, bytes in and out.
        #[arg(long, conflicts_with = "json")]
        stats: bool,
    },
    /// Stop sending new connections to a real server; existing ones finish.
    Drain {
        virtual_service: String,
        real_server: String,
    },
    /// Take a real server out of the table (maintenance).
    Maint {
        virtual_service: String,
        real_server: String,
    },
    /// Put a drained or maintained real server back.
    Ready {
        virtual_service: String,
        real_server: String,
    },
    /// Set a real server's weight.
    Weight {
        virtual_service: String,
        real_server: String,
        weight: u32,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and compile the config; print a summary or every error.
    CheckConfig,
    /// Print the config (mon.cf, keepalived.conf or TOML) as native TOML,
    /// each table annotated with the line it came from; `check-config` of
    /// the output gives the same running config.
    Convert,
    /// Run the daemon (foreground; --daemon to detach).
    Start {
        #[arg(long)]
        daemon: bool,
        /// Where logs go: `auto` is the journal when systemd connected
        /// stderr to it (JOURNAL_STREAM), else stderr (colours only on a
        /// terminal); `syslog` sends to /dev/log with the config's
        /// `syslog_facility`.
        #[arg(long, value_enum, default_value_t = LogArg::Auto)]
        log: LogArg,
        /// Log to syslog with this facility (mon's and keepalived's names:
        /// daemon, local0 ... local7, or keepalived's -S digit 0-7 for
        /// local0-7) instead of the config's `syslog_facility`; implies
        /// `--log syslog` unless --log names another destination.
        #[arg(long, value_name = "FACILITY")]
        log_facility: Option<String>,
    },
    /// Stop the running daemon gracefully.
    Stop,
    /// Is the daemon running, and how is it doing.
    Status,
    /// Every watch and service with its state.
    Dump {
        #[arg(long)]
        json: bool,
    },
    /// Apply the config file again, keeping unchanged services' state.
    Reload,
    /// Stop scheduling monitors (mon's `stop`).
    Pause,
    /// Resume scheduling monitors (mon's `start`).
    Resume,
    /// Enable a watch, service or host.
    Enable {
        #[arg(num_args = 1..)]
        what: Vec<String>,
    },
    /// Disable a watch, service or host.
    Disable {
        #[arg(num_args = 1..)]
        what: Vec<String>,
    },
    /// Acknowledge a failing service: ack GROUP SERVICE COMMENT...
    Ack {
        #[arg(num_args = 3..)]
        args: Vec<String>,
    },
    /// Run a monitor or an alert now: test monitor|alert|upalert GROUP SERVICE
    Test {
        #[arg(num_args = 3..)]
        args: Vec<String>,
    },
    /// Show or edit the load-balancer tables.
    #[command(subcommand)]
    Lb(LbCommand),
    /// Show the VRRP instances.
    #[command(subcommand)]
    Vrrp(VrrpCommand),
    /// Run as ExaBGP's API process (`process keepmon { run keepmon
    /// exabgp-api -c FILE; encoder text; }`): print `announce route` /
    /// `withdraw route` lines as the daemon's announcements change; withdraw
    /// everything when the daemon cannot be reached.
    ExabgpApi,
    /// Print the version; --verbose adds the build and what this machine offers
    /// (Lua, IPVS, nftables, VRRP sockets).
    Version {
        #[arg(long)]
        verbose: bool,
    },
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
enum VrrpCommand {
    /// State, priority (configured/effective), master, last transition and
    /// its reason, counters of dropped packets.
    Show {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format.map(|f| match f {
        FormatArg::Mon => Format::Mon,
        FormatArg::Toml => Format::Toml,
        FormatArg::Keepalived => Format::Keepalived,
        FormatArg::Haproxy => Format::Haproxy,
    });
    // Without -c: the installed config when there is one, else the demo.
    let installed = Path::new(INSTALLED_CONFIG);
    let path = cli
        .config
        .as_deref()
        .or_else(|| installed.is_file().then_some(installed));
    match &cli.command {
        Command::CheckConfig => check_config(path, format),
        Command::Convert => convert(path, format),
        Command::Start {
            daemon,
            log,
            log_facility,
        } => start(
            path,
            format,
            *daemon,
            &LogOptions {
                destination: *log,
                facility: log_facility.clone(),
            },
        ),
        Command::Stop => client(path, format, Request::Stop),
        Command::Status => client(path, format, Request::Status),
        Command::Dump { json } => answer(path, format, Request::Dump, *json),
        Command::Reload => client(path, format, Request::Reload),
        Command::Pause => client(path, format, Request::Pause),
        Command::Resume => client(path, format, Request::Resume),
        Command::Enable { what } | Command::Disable { what } => {
            let target = match parse_target(what) {
                Ok(t) => t,
                Err(message) => return usage_error(&message),
            };
            let request = if matches!(cli.command, Command::Enable { .. }) {
                Request::Enable { target }
            } else {
                Request::Disable { target }
            };
            client(path, format, request)
        }
        Command::Ack { args } => client(
            path,
            format,
            Request::Ack {
                group: args[0].clone(),
                service: args[1].clone(),
                comment: args[2..].join(" "),
            },
        ),
        Command::Test { args } => {
            let what = match args[0].as_str() {
                "monitor" => TestWhat::Monitor,
                "alert" => TestWhat::Alert,
                "upalert" => TestWhat::Upalert,
                other => {
                    return usage_error(&format!(
                        "test {other}: expected monitor, alert or upalert"
                    ));
                }
            };
            client(
                path,
                format,
                Request::Test {
                    what,
                    group: args[1].clone(),
                    service: args[2].clone(),
                },
            )
        }
        Command::Lb(lb) => lb_command(path, format, lb),
        Command::Vrrp(VrrpCommand::Show { json }) => answer(path, format, Request::VrrpShow, *json),
        Command::ExabgpApi => exabgp_api(path, format),
        Command::Version { verbose: false } => {
            println!("keepmon {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Version { verbose: true } => {
            print!("{}", keepmon::buildinfo::verbose_report());
            ExitCode::SUCCESS
        }
        Command::GenerateDocs { dir } => match generate_docs(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keepmon: {}: {e}", dir.display());
                ExitCode::from(1)
            }
        },
    }
}

/// keepmon(8), keepmon.toml(5) and the bash and zsh completions, as
/// `DIR/keepmon.8`, `DIR/keepmon.toml.5`, `DIR/completions/keepmon.bash`
/// and `DIR/completions/_keepmon`.
fn generate_docs(dir: &Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    std::fs::create_dir_all(dir.join("completions"))?;
    std::fs::write(dir.join("keepmon.8"), keepmon::manpage::keepmon_8(&cmd))?;
    std::fs::write(
        dir.join("keepmon.toml.5"),
        keepmon::manpage::keepmon_toml_5(EMBEDDED_CONFIG, env!("CARGO_PKG_VERSION")),
    )?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "keepmon.bash"),
        (clap_complete::Shell::Zsh, "_keepmon"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "keepmon", &mut text);
        std::fs::write(dir.join("completions").join(file), text)?;
    }
    Ok(())
}

fn lb_command(path: Option<&Path>, format: Option<Format>, command: &LbCommand) -> ExitCode {
    let (vs, rs, change) = match command {
        LbCommand::Show { stats: true, .. } => return lb_stats(path, format),
        LbCommand::Show { json, .. } => return answer(path, format, Request::LbShow, *json),
        LbCommand::Drain {
            virtual_service,
            real_server,
        } => (virtual_service, real_server, LbChange::Drain),
        LbCommand::Maint {
            virtual_service,
            real_server,
        } => (virtual_service, real_server, LbChange::Maint),
        LbCommand::Ready {
            virtual_service,
            real_server,
        } => (virtual_service, real_server, LbChange::Ready),
        LbCommand::Weight {
            virtual_service,
            real_server,
            weight,
        } => (
            virtual_service,
            real_server,
            LbChange::Weight { weight: *weight },
        ),
    };
    client(
        path,
        format,
        Request::LbSet {
            virtual_service: vs.clone(),
            real_server: rs.clone(),
            change,
        },
    )
}

/// `enable|disable watch G | service G S | host H...`
fn parse_target(words: &[String]) -> Result<Target, String> {
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["watch", group] => Ok(Target::Watch {
            group: group.to_string(),
        }),
        ["service", group, service] => Ok(Target::Service {
            group: group.to_string(),
            service: service.to_string(),
        }),
        ["host", hosts @ ..] if !hosts.is_empty() => Ok(Target::Host {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }),
        _ => Err("expected: watch GROUP | service GROUP SERVICE | host HOST...".to_string()),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("keepmon: {message}");
    ExitCode::from(2)
}

/// `start --log` and `--log-facility`.
struct LogOptions {
    destination: LogArg,
    facility: Option<String>,
}

/// Logs to stderr, the journal or syslog (src/logging.rs).
fn init_logging(
    options: &LogOptions,
    config_facility: &str,
) -> Result<(), keepmon::logging::LoggingError> {
    use keepmon::logging::{self, LogMode};
    let mode = match (options.destination, &options.facility) {
        (LogArg::Auto, Some(_)) | (LogArg::Syslog, _) => LogMode::Syslog,
        (LogArg::Auto, None) => LogMode::Auto,
        (LogArg::Stderr, _) => LogMode::Stderr,
        (LogArg::Journal, _) => LogMode::Journal,
    };
    let facility = options.facility.as_deref().unwrap_or(config_facility);
    let destination = logging::choose(mode, facility, &logging::Surroundings::of_this_process())?;
    logging::init(&destination);
    Ok(())
}

fn start(path: Option<&Path>, format: Option<Format>, daemon: bool, log: &LogOptions) -> ExitCode {
    // Check the config before forking so errors reach the terminal.
    let compiled = match load(path, format) {
        Ok(c) => c,
        Err(error) => {
            // The first diagnostics, then a count (config::diag::MAX_SHOWN).
            eprint!("{}", error.diagnostics);
            eprintln!("{error}");
            return ExitCode::from(1);
        }
    };
    let settings = &compiled.config.settings;
    let pidfile = settings
        .pidfile
        .clone()
        .unwrap_or_else(|| settings.statedir.join("keepmon.pid"));
    let _pid_lock = if daemon {
        match daemonize::detach(&pidfile, &settings.statedir.join("keepmon.log")) {
            Ok(daemonize::Role::Parent(pid)) => {
                println!(
                    "keepmon started in the background (pid {pid}, pidfile {})",
                    pidfile.display()
                );
                return ExitCode::SUCCESS;
            }
            Ok(daemonize::Role::Child(lock)) => Some(lock),
            Err(e) => {
                eprintln!("keepmon: cannot start: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    if let Err(e) = init_logging(log, &settings.syslog_facility) {
        eprintln!("keepmon: {e}");
        return ExitCode::from(1);
    }
    // Still one thread here (the runtime starts below).
    keepmon::systemd::init_from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keepmon: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = supervisor::Options {
        config_path: path.map(Path::to_path_buf),
        format,
        embedded: EMBEDDED_CONFIG,
    };
    match runtime.block_on(supervisor::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("keepmon: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Send one request to the running daemon and print the answer.
fn client(path: Option<&Path>, format: Option<Format>, request: Request) -> ExitCode {
    answer(path, format, request, false)
}

/// Send one request and print the answer as text, or as JSON when `json`
/// (for answers that carry data: dump, lb show).
fn answer(path: Option<&Path>, format: Option<Format>, request: Request, json: bool) -> ExitCode {
    let response = call(path, format, &request);
    if json {
        let value = match &response {
            Ok(Response::Dump(d)) => serde_json::to_value(d).ok(),
            Ok(Response::Lb { json, .. }) => Some(json.clone()),
            Ok(Response::Vrrp { instances }) => serde_json::to_value(instances).ok(),
            _ => None,
        };
        if let Some(value) = value {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
    }
    match response {
        Ok(Response::Ok { message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("keepmon: {message}");
            ExitCode::from(1)
        }
        Ok(Response::Status(s)) => {
            println!("keepmon running, pid {}, config {}", s.pid, s.config);
            println!(
                "scheduler {}; {} services, {} failing; {} alerts sent",
                if s.scheduler_running {
                    "running"
                } else {
                    "stopped"
                },
                s.services,
                s.failing.len(),
                s.alerts_sent
            );
            for f in &s.failing {
                println!("  failing: {f}");
            }
            ExitCode::SUCCESS
        }
        Ok(Response::Dump(d)) => {
            print!("{}", render::dump_table(&d));
            ExitCode::SUCCESS
        }
        Ok(Response::Lb { text, .. }) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Response::Vrrp { instances }) => {
            print!("{}", render::vrrp_table(&instances));
            ExitCode::SUCCESS
        }
        Ok(Response::Announcements { announcements }) => {
            print!("{}", render::announce_table(&announcements));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("keepmon: {message}");
            ExitCode::from(3)
        }
    }
}

/// ExaBGP's API process: poll the daemon's announcements and print the
/// difference as ExaBGP text commands. Ends when ExaBGP closes our stdout.
fn exabgp_api(path: Option<&Path>, format: Option<Format>) -> ExitCode {
    use std::io::{Read as _, Write as _};
    // ExaBGP writes to our stdin (acks, neighbor news); when it goes away,
    // stdin ends: so do we, even if no change was ever printed.
    std::thread::spawn(|| {
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let mut announced: Vec<String> = Vec::new();
    let mut out = std::io::stdout().lock();
    loop {
        let wanted: Vec<String> = match call(path, format, &Request::Announcements) {
            Ok(Response::Announcements { announcements }) => announcements
                .into_iter()
                .filter(|a| a.wanted)
                .map(|a| a.prefix)
                .collect(),
            // The daemon is gone or refuses: announce nothing rather than a
            // VIP nobody serves.
            _ => Vec::new(),
        };
        for line in keepmon::announce::exabgp_lines(&announced, &wanted) {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
        announced = wanted;
        std::thread::sleep(keepmon::announce::EXABGP_POLL);
    }
}

/// `lb show --stats`: the daemon's table report rendered with its totals.
fn lb_stats(path: Option<&Path>, format: Option<Format>) -> ExitCode {
    match call(path, format, &Request::LbShow) {
        Ok(Response::Lb { json, .. }) => {
            match serde_json::from_value::<keepmon::lb::table::Report>(json) {
                Ok(report) => {
                    print!("{}", render::lb_stats(&report));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("keepmon: the daemon's table report is not readable: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Ok(Response::Error { message }) => {
            eprintln!("keepmon: {message}");
            ExitCode::from(1)
        }
        Ok(other) => {
            eprintln!("keepmon: unexpected answer from the daemon: {other:?}");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("keepmon: {message}");
            ExitCode::from(3)
        }
    }
}

fn call(
    path: Option<&Path>,
    format: Option<Format>,
    request: &Request,
) -> Result<Response, String> {
    let socket = match load(path, format) {
        Ok(compiled) => compiled.config.settings.control_socket,
        // A config with errors elsewhere still names the socket; the daemon
        // (still running its old config) gives the full account on reload.
        Err(error) => match path.and_then(|p| config::settings_of(p, format)) {
            Some(settings) => settings.control_socket,
            None => {
                return Err(format!(
                    "{}{error} (the control socket path comes from the config)",
                    error.diagnostics
                ));
            }
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(keepmon::control::unix::call(
            &socket,
            request,
            Duration::from_secs(30),
        ))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                format!("keepmon is not running (no daemon on {})", socket.display())
            }
            _ => format!("{}: {e}", socket.display()),
        })
}

/// Load the config named by `-c`, or the embedded demo.
fn load(path: Option<&Path>, format: Option<Format>) -> Result<Compiled, config::CompileError> {
    match path {
        Some(path) => config::load(path, format),
        None => config::compile_str(
            EMBEDDED_CONFIG,
            Path::new(EMBEDDED_NAME),
            format.unwrap_or(Format::Toml),
            &config::RealFileSystem,
        ),
    }
}

fn check_config(path: Option<&Path>, format: Option<Format>) -> ExitCode {
    match load(path, format) {
        Ok(compiled) => {
            for warning in compiled
                .warnings
                .warnings()
                .take(keepmon::config::diag::MAX_SHOWN)
            {
                eprintln!("{warning}");
            }
            print!("{}", summary(&compiled, path));
            ExitCode::SUCCESS
        }
        Err(error) => {
            // The first diagnostics, then a count (config::diag::MAX_SHOWN).
            eprint!("{}", error.diagnostics);
            eprintln!("{error}");
            ExitCode::from(1)
        }
    }
}

fn convert(path: Option<&Path>, format: Option<Format>) -> ExitCode {
    match load(path, format) {
        Ok(compiled) => {
            for warning in compiled
                .warnings
                .warnings()
                .take(keepmon::config::diag::MAX_SHOWN)
            {
                eprintln!("{warning}");
            }
            let converted = keepmon::config::convert::to_native(&compiled.config);
            for loss in &converted.losses {
                eprintln!("warning: {loss}");
            }
            print!("{}", converted.text);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", error.diagnostics);
            eprintln!("{error}");
            ExitCode::from(1)
        }
    }
}

fn summary(compiled: &Compiled, path: Option<&Path>) -> String {
    let c = &compiled.config;
    let name = match path {
        Some(p) => p.display().to_string(),
        None => "built-in demo config (etc/keepmon.toml)".to_string(),
    };
    let format = match c.format {
        Format::Mon => "mon.cf",
        Format::Toml => "toml",
        Format::Keepalived => "keepalived.conf",
        Format::Haproxy => "haproxy.cfg",
    };
    let services = c.services().count();
    let mail = keepmon::mail::smtp::describe(&c.mail);
    let warnings = compiled.warnings.warnings().count();
    let announcements = if c.announce.is_empty() {
        String::new()
    } else {
        let via = match c.bgp.via {
            keepmon::config::model::RouteDaemon::Bird => {
                format!("BIRD include {}", c.bgp.bird_include.display())
            }
            keepmon::config::model::RouteDaemon::Frr => match &c.bgp.frr_pathspace {
                Some(space) => format!("FRR through vtysh -N {space}"),
                None => "FRR through vtysh".to_string(),
            },
            keepmon::config::model::RouteDaemon::ExaBgp => "ExaBGP API process".to_string(),
        };
        format!("  announcements    {} ({via})\n", c.announce.len())
    };
    format!(
        "{name}: ok ({format} format, {warnings} warning(s))\n\
         \x20 hostgroups       {}\n\
         \x20 watches          {}\n\
         \x20 services         {services}\n\
         \x20 periods          {}\n\
         \x20 virtual servers  {}\n\
         \x20 vrrp instances   {}\n\
         {announcements}\
         \x20 mail delivery    {mail}\n\
         \x20 state directory  {}\n",
        c.hostgroups.len(),
        c.watches.len(),
        c.period_count(),
        c.virtual_servers.len(),
        c.vrrp.len(),
        c.settings.statedir.display(),
    )
}
