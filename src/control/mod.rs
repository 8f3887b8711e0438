//! The control channel between the CLI and the daemon: a typed request/response protocol over a 0600 Unix socket.

pub mod proto;
pub mod unix;
