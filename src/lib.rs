//! keepmon: one daemon for a Linux load-balancer director.
//!
//! The layers (see ARCHITECTURE.md for the full map):
//!
//! ```text
//!  config files ──► config::load / compile_str ──► Config (validated model)
//!                                                    │ diff(old, new) on start and reload
//!                                                    ▼
//!  scheduler ──runs──► monitors ──CheckResult per host──► supervisor (owns state)
//!                                                           │ pure core decides
//!                                                           ▼
//!                      actions: alerts (edge-triggered), lb data plane (level-triggered)
//! ```
//!
//! The pure core (config compilation, [`period`], the service state machine,
//! the lb table, the VRRP codec) never does IO and never reads the clock.

pub mod alert;
pub mod alertmanager;
pub mod announce;
pub mod bfd;
pub mod buildinfo;
pub mod childenv;
pub mod cmsg;
pub mod config;
pub mod control;
pub mod daemonize;
pub mod fdlimit;
pub mod lb;
pub mod logging;
pub mod lua;
pub mod lua_settings;
pub mod mail;
pub mod manpage;
pub mod metrics;
pub mod monitor;
pub mod monproto;
pub mod period;
pub mod ratelimit;
pub mod render;
pub mod run;
pub mod scheduler;
pub mod service;
pub mod spool;
pub mod state;
pub mod supervisor;
pub mod systemd;
pub mod traptimer;
pub mod vrrp;
pub mod wallclock;
pub mod web;
