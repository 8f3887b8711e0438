//! Where `lua:NAME` scripts are found and the limits each run gets: plain data that [`crate::monitor::RunRequest`] and [`crate::alert::AlertJob`] carry, kept in a leaf module so that `monitor/` and `alert/` never import the Lua runtime ([`crate::lua`] builds on them, not the other way round).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::model::{LuaLimits, Settings};

/// Where scripts are found and the limits each run gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuaSettings {
    /// The config's `luadir`, searched before the shipped directories.
    pub luadir: Vec<PathBuf>,
    pub limits: LuaLimits,
}

impl LuaSettings {
    /// The config's Lua settings; `file.append` writes beneath `[lua]
    /// files_dir`, else beneath `logdir`.
    pub fn from_settings(settings: &Settings) -> LuaSettings {
        let mut limits = settings.lua.clone();
        if limits.files_dir.is_none() {
            limits.files_dir = Some(settings.logdir.clone());
        }
        LuaSettings {
            luadir: settings.luadir.clone(),
            limits,
        }
    }
}

impl Default for LuaSettings {
    /// Only the shipped scripts, keepmon's default limits.
    fn default() -> LuaSettings {
        LuaSettings {
            luadir: Vec::new(),
            limits: LuaLimits {
                timeout: Duration::from_secs(10),
                instructions: 10_000_000,
                memory_bytes: 32 * 1024 * 1024,
                files_dir: None,
                allow_networks: Vec::new(),
            },
        }
    }
}
