//! The Lua runtime for `lua:NAME` monitors and alerts: finds and compiles scripts (cached by path, mtime and size), builds a fresh sandboxed Lua state per run with the async host API and the per-run limits; never decides what a result means.
//!
//! One run = one Lua state. The state is created from a small allowlist of
//! standard libraries (base without `dofile`/`loadfile`/`collectgarbage`,
//! a text-only `load`, `string` without `dump`, `table`, `math`, `utf8`,
//! `coroutine`) plus the host API of `api.rs`. Nothing survives the run, so
//! globals cannot leak between scripts or between runs of one script.
//!
//! Scripts are compiled once per (path, mtime, size) into bytecode and the
//! bytecode is loaded into each run's state; a changed file is compiled
//! again on its next run, so `reload` (or no reload at all) picks it up.
//! Only keepmon itself loads binary chunks: a script's own `load` is text only.
//!
//! Limits, all per run ([`LuaLimits`]): a wall-clock deadline (the tokio
//! timeout around the run, and the instruction hook also checks it so a
//! busy loop stops on time), an instruction budget counted by a hook every
//! [`HOOK_EVERY`] instructions, and a memory limit on the state's
//! allocator. Once a limit trips, `pcall`/`xpcall`/`coroutine.resume`
//! re-raise it, so a script cannot catch its way past a limit.
//!
//! Concurrency: a monitor's `check(host)` runs as one Lua coroutine per
//! host, all polled by the run's own task; every host API call is a tokio
//! future, so a thousand checks wait on the network together in one state
//! without a thread each.
//!
//! Known limit: a single long-running C function (a pathological
//! `string.find` pattern on a large string) is not interrupted until it
//! returns; the hook runs between Lua instructions only.

pub mod alert;
mod api;
pub mod monitor;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use tokio::time::Instant;

use crate::config::RealFileSystem;
use crate::config::model::{LuaLimits, Settings};
use crate::config::settings::{SHIPPED_LUA_DIRS, find_in};

/// The instruction hook runs every this many Lua instructions.
pub const HOOK_EVERY: u32 = 1000;

/// Where scripts are found and the limits each run gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuaSettings {
    /// The config's `luadir`, searched before the shipped directories.
    pub luadir: Vec<PathBuf>,
    pub limits: LuaLimits,
}

impl LuaSettings {
    pub fn from_settings(settings: &Settings) -> LuaSettings {
        LuaSettings {
            luadir: settings.luadir.clone(),
            limits: settings.lua.clone(),
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
            },
        }
    }
}

/// What the service a script runs for looks like to the script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptContext {
    pub group: String,
    pub service: String,
    /// The service's `VAR=value` lines and the `MON_*` values (`env` in Lua).
    pub env: Vec<(String, String)>,
    /// The words after the script name (`args` in Lua).
    pub args: Vec<String>,
}

/// Why a script could not be started at all (as opposed to a check that failed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("lua script {name} not found (searched {searched})")]
    NotFound { name: String, searched: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}")]
    Compile(String),
}

/// The file for script `name` (with or without `.lua`): `luadir`, then the shipped dirs.
pub fn find_script(luadir: &[PathBuf], name: &str) -> Result<PathBuf, ScriptError> {
    let file = if name.ends_with(".lua") {
        name.to_string()
    } else {
        format!("{name}.lua")
    };
    let mut dirs = luadir.to_vec();
    dirs.extend(SHIPPED_LUA_DIRS.iter().map(PathBuf::from));
    find_in(&dirs, &file, &RealFileSystem).ok_or_else(|| ScriptError::NotFound {
        name: name.to_string(),
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A compiled script, ready to be loaded into a run's state.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// `NAME.lua`: the chunk name, so errors read `NAME.lua:LINE: ...`.
    pub file_name: String,
    bytecode: Arc<Vec<u8>>,
}

/// Compile `path`, or reuse the bytecode from a previous run when the file's
/// mtime and size are unchanged.
pub fn compile(path: &Path) -> Result<Compiled, ScriptError> {
    static CACHE: Mutex<Option<HashMap<PathBuf, (Stamp, Compiled)>>> = Mutex::new(None);
    let read_error = |e: std::io::Error| ScriptError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let stamp = Stamp::of(path).map_err(read_error)?;
    if let Some((cached, compiled)) = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(path)
        && *cached == stamp
    {
        return Ok(compiled.clone());
    }
    let source = std::fs::read(path).map_err(read_error)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let compiler = Lua::new_with(StdLib::NONE, LuaOptions::new())
        .map_err(|e| ScriptError::Compile(e.to_string()))?;
    let function = compiler
        .load(&source[..])
        .set_name(format!("@{file_name}"))
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|e| ScriptError::Compile(describe_error(&e, &file_name)))?;
    let compiled = Compiled {
        file_name,
        bytecode: Arc::new(function.dump(false)),
    };
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(path.to_path_buf(), (stamp, compiled.clone()));
    Ok(compiled)
}

/// What a file looked like when it was compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(path)?;
        Ok(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// One run's Lua state with its limits armed.
pub(crate) struct Sandbox {
    pub lua: Lua,
    pub file_name: String,
    pub deadline: Instant,
    tripped: Arc<Tripped>,
}

/// Set once a limit trips; read by the hook and the `pcall` guard.
#[derive(Default)]
struct Tripped {
    hit: AtomicBool,
    instructions: AtomicU64,
}

impl Sandbox {
    /// A fresh state for `compiled` with the context as globals. The main
    /// chunk has not run yet (see [`Sandbox::run_main`]).
    pub fn new(
        compiled: &Compiled,
        context: &ScriptContext,
        limits: &LuaLimits,
        deadline: Instant,
    ) -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH,
            LuaOptions::new(),
        )?;
        let tripped = Arc::new(Tripped::default());
        let sandbox = Sandbox {
            lua,
            file_name: compiled.file_name.clone(),
            deadline,
            tripped,
        };
        sandbox.restrict()?;
        api::install(&sandbox.lua, &compiled.file_name, context)?;
        sandbox.arm(limits)?;
        Ok(sandbox)
    }

    /// Load and run the script's main chunk (it defines `check` or `alert`).
    pub async fn run_main(&self, compiled: &Compiled) -> mlua::Result<()> {
        let main = self
            .lua
            .load(&compiled.bytecode[..])
            .set_name(format!("@{}", compiled.file_name))
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        main.call_async::<()>(()).await
    }

    /// The global function `name`, or an error naming the script.
    pub fn function(&self, name: &str) -> Result<Function, String> {
        match self.lua.globals().get::<Value>(name) {
            Ok(Value::Function(f)) => Ok(f),
            Ok(Value::Nil) => Err(format!(
                "{}: the script defines no {name}() function",
                self.file_name
            )),
            Ok(other) => Err(format!(
                "{}: {name} is a {}, not a function",
                self.file_name,
                other.type_name()
            )),
            Err(e) => Err(self.describe(&e)),
        }
    }

    /// A one-line reason for a failed call: `NAME.lua:LINE: message`.
    pub fn describe(&self, error: &mlua::Error) -> String {
        describe_error(error, &self.file_name)
    }

    /// Drop what a sandbox must not have and wrap the error catchers.
    fn restrict(&self) -> mlua::Result<()> {
        let globals = self.lua.globals();
        for name in ["dofile", "loadfile", "collectgarbage"] {
            globals.raw_set(name, Value::Nil)?;
        }
        let string: Table = globals.get("string")?;
        string.raw_set("dump", Value::Nil)?;
        let tripped = self.tripped.clone();
        let limit_hit = self
            .lua
            .create_function(move |_, ()| Ok(tripped.hit.load(Ordering::Relaxed)))?;
        run_builtin_chunk(&self.lua, "guards", GUARDS, limit_hit)?;
        let (close, set_timeout) = api::conn_functions(&self.lua)?;
        let io = api::io_function(&self.lua)?;
        run_builtin_chunk(&self.lua, "api", api::PRELUDE, (io, close, set_timeout))
    }

    /// The instruction budget, the deadline in the hook, the memory limit.
    fn arm(&self, limits: &LuaLimits) -> mlua::Result<()> {
        let tripped = self.tripped.clone();
        let budget = limits.instructions;
        let deadline = self.deadline;
        self.lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, debug| {
                let used = tripped
                    .instructions
                    .fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed)
                    + u64::from(HOOK_EVERY);
                let message = if used > budget {
                    format!("instruction budget of {budget} exhausted")
                } else if Instant::now() >= deadline {
                    "run timed out".to_string()
                } else {
                    return Ok(VmState::Continue);
                };
                tripped.hit.store(true, Ordering::Relaxed);
                // Where the script was, as Lua's own errors say it.
                let source = debug.source();
                let position = match (source.short_src, debug.current_line()) {
                    (Some(file), Some(line)) => format!("{file}:{line}: "),
                    _ => String::new(),
                };
                Err(mlua::Error::runtime(format!("{position}{message}")))
            },
        )?;
        self.lua.set_memory_limit(limits.memory_bytes)?;
        Ok(())
    }
}

/// Run one of keepmon's own Lua chunks with `args`; each is compiled once per
/// process and loaded as bytecode after that.
fn run_builtin_chunk(
    lua: &Lua,
    name: &str,
    source: &'static str,
    args: impl mlua::IntoLuaMulti,
) -> mlua::Result<()> {
    /// (source, its bytecode) for each chunk compiled so far.
    type Chunks = Vec<(&'static str, Arc<Vec<u8>>)>;
    static COMPILED: Mutex<Chunks> = Mutex::new(Vec::new());
    let cached = COMPILED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .find(|(s, _)| std::ptr::eq(*s, source))
        .map(|(_, code)| code.clone());
    let bytecode = match cached {
        Some(code) => code,
        None => {
            let compiler = Lua::new_with(StdLib::NONE, LuaOptions::new())?;
            let function = compiler
                .load(source)
                .set_name(format!("={name}"))
                .set_mode(ChunkMode::Text)
                .into_function()?;
            let code = Arc::new(function.dump(true));
            COMPILED
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((source, code.clone()));
            code
        }
    };
    lua.load(&bytecode[..])
        .set_name(format!("={name}"))
        .set_mode(ChunkMode::Binary)
        .call::<()>(args)
}

/// `pcall`, `xpcall` and `coroutine.resume` that re-raise a tripped limit,
/// and a `load` that accepts text chunks only.
const GUARDS: &str = r#"
local limit_hit = ...
local pcall, xpcall, error, select, load = pcall, xpcall, error, select, load
local resume = coroutine.resume
local function guard(ok, ...)
  if not ok and limit_hit() then error((...), 0) end
  return ok, ...
end
_G.pcall = function(...) return guard(pcall(...)) end
_G.xpcall = function(...) return guard(xpcall(...)) end
coroutine.resume = function(...) return guard(resume(...)) end
_G.load = function(chunk, name, _, env)
  return load(chunk, name, "t", env or _G)
end
"#;

/// `NAME.lua:LINE: message` from any error a script run can raise.
pub fn describe_error(error: &mlua::Error, file_name: &str) -> String {
    match error {
        mlua::Error::CallbackError { cause, traceback } => {
            let mut root = cause.as_ref();
            while let mlua::Error::CallbackError { cause, .. } = root {
                root = cause.as_ref();
            }
            let message = root_message(root);
            if message.starts_with(&format!("{file_name}:")) {
                return message;
            }
            match script_position(traceback, file_name) {
                Some(position) => format!("{position}: {message}"),
                None => format!("{file_name}: {message}"),
            }
        }
        other => {
            let message = root_message(other);
            if message.starts_with(&format!("{file_name}:")) {
                message
            } else {
                format!("{file_name}: {message}")
            }
        }
    }
}

fn root_message(error: &mlua::Error) -> String {
    let text = match error {
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(_) => "out of memory (the memory limit was reached)".to_string(),
        mlua::Error::ExternalError(e) => e.to_string(),
        mlua::Error::WithContext { context, cause } => {
            format!("{context}: {}", root_message(cause))
        }
        other => other.to_string(),
    };
    // Lua adds a traceback to some messages; the first line says it all.
    let first = text.lines().next().unwrap_or_default().trim();
    first
        .strip_prefix("runtime error: ")
        .unwrap_or(first)
        .to_string()
}

/// The innermost `NAME.lua:LINE` in a traceback: where the script was when
/// the error was raised.
fn script_position(traceback: &str, file_name: &str) -> Option<String> {
    let prefix = format!("{file_name}:");
    traceback.lines().find_map(|line| {
        let line = line.trim();
        let rest = line.strip_prefix(&prefix)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then(|| format!("{file_name}:{digits}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_comes_from_the_innermost_script_frame() {
        let tb = "stack traceback:\n\t[C]: in function 'tcp.connect'\n\tredis.lua:12: in function 'check'\n\tredis.lua:3: in main chunk";
        assert_eq!(
            script_position(tb, "redis.lua").as_deref(),
            Some("redis.lua:12")
        );
        assert_eq!(script_position(tb, "other.lua"), None);
    }

    #[test]
    fn runtime_errors_keep_their_position() {
        let e = mlua::Error::RuntimeError("x.lua:4: attempt to index a nil value".into());
        assert_eq!(
            describe_error(&e, "x.lua"),
            "x.lua:4: attempt to index a nil value"
        );
        let e = mlua::Error::RuntimeError("boom".into());
        assert_eq!(describe_error(&e, "x.lua"), "x.lua: boom");
    }
}
