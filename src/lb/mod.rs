//! Load-balancer tables and data planes.

pub mod table;
