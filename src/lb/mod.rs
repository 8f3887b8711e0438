//! Load-balancer tables and data planes.

pub mod access_log;
pub mod balance;
pub mod dataplane;
pub mod haproxy_hash;
pub mod http;
pub mod ipvs;
pub mod nft;
pub mod proxy;
pub mod proxy_protocol;
pub(crate) mod queue;
pub(crate) mod relay;
pub mod route;
pub mod splice;
pub mod table;
pub mod workers;
