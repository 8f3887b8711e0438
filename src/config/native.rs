//! placeholder
use std::path::Path;
use std::sync::Arc;
pub fn parse(
    _t: &str,
    _f: &Arc<Path>,
    _fs: &dyn crate::config::FileSystem,
) -> (Option<crate::config::Config>, crate::config::Diagnostics) {
    (None, Default::default())
}
