//! The Lua runtime for `lua:NAME` monitors and alerts: finds and compiles scripts (cached by path, mtime and size), keeps a small pool of prepared sandboxed Lua states per script and gives each run a fresh environment with the async host API and the per-run limits; never decides what a result means.
//!
//! A state is prepared from a small allowlist of standard libraries (base
//! without `dofile`/`loadfile`/`collectgarbage`, a text-only `load`,
//! `string` without `dump`, `table`, `math`, `utf8`, `coroutine`) plus the
//! host API of `api.rs`, and the script's main chunk is loaded into it once.
//! Runs of one script then reuse it (as many idle states as the script's peak
//! concurrency, at most [`POOL_PER_SCRIPT`], keyed by path, mtime and size), because preparing a state
//! costs more CPU than a one-host check does.
//!
//! Isolation between runs of a reused state:
//! - every run gets a fresh environment table (`_ENV` and `_G` of the main
//!   chunk, of `check`/`alert`, and of chunks `load`ed without one); its
//!   `__index` is the shared globals, its metatable protected, so what a run
//!   defines dies with the run;
//! - what runs share is read-only: each library and API table is a proxy
//!   whose writes raise an error, whose metatable is protected and which
//!   `rawset` refuses; the string and connection metatables are protected;
//!   the shared globals have no `_G` a script could reach;
//! - a state whose run hit a limit, timed out, or raised anything other than
//!   a plain script error is dropped, not reused; a state that keeps more
//!   than [`POOL_SLACK_BYTES`] after a garbage collection is dropped too.
//!
//! Scripts are compiled once per (path, mtime, size) into bytecode and the
//! bytecode is loaded once into each prepared state; a changed file is
//! compiled again on its next run and gets new states (the old pool is
//! dropped), so `reload` (or no reload at all) picks it up.
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
mod files;
pub mod monitor;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use tokio::time::Instant;

use crate::config::RealFileSystem;
use crate::config::model::LuaLimits;
use crate::config::settings::{SHIPPED_LUA_DIRS, find_in};

/// The instruction hook runs every this many Lua instructions.
pub const HOOK_EVERY: u32 = 1000;

/// Where scripts are found and the limits each run gets. Plain data that
/// monitor requests and alert jobs carry; it lives in a leaf module so that
/// `monitor/` and `alert/` need not import the Lua runtime.
pub use crate::lua_settings::LuaSettings;

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
    /// The file and its (mtime, size): the key of the state pool.
    path: PathBuf,
    stamp: Stamp,
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
        path: path.to_path_buf(),
        stamp,
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

/// How many idle prepared states are kept per script. Services fire on the
/// same tick, so a script used by 100 one-host services has up to 100 runs
/// at once; the pool holds as many states as the script's peak concurrency
/// (up to this cap), each about 100–200 KB. Runs beyond the cap prepare a
/// state and drop it afterwards.
pub const POOL_PER_SCRIPT: usize = 128;

/// A pooled state that grew by more than this since it was prepared is
/// garbage-collected before it goes back (and dropped if that does not help),
/// so one run's garbage does not count against the next run's memory limit
/// and an idle pool stays small.
pub const POOL_SLACK_BYTES: usize = 256 << 10;

/// Prepared states per script file, for the file's current (mtime, size).
struct Pool {
    stamp: Stamp,
    idle: Vec<Prepared>,
    /// States prepared for this file so far (for tests and benchmarks).
    prepared: u64,
}

static POOLS: Mutex<Option<HashMap<PathBuf, Pool>>> = Mutex::new(None);

fn with_pools<R>(f: impl FnOnce(&mut HashMap<PathBuf, Pool>) -> R) -> R {
    f(POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(HashMap::new))
}

/// How many Lua states have been prepared for the script at `path` (its
/// current version) since keepmon started: a run that reuses a pooled state
/// does not add one. For tests and benchmarks.
pub fn prepared_states(path: &Path) -> u64 {
    with_pools(|pools| pools.get(path).map_or(0, |pool| pool.prepared))
}

/// A Lua state ready for runs of one script: the sandboxed libraries and the
/// host API in read-only tables, the script's main chunk loaded (not run).
struct Prepared {
    lua: Lua,
    tripped: Arc<Tripped>,
    /// The script's main chunk; each run gives it a fresh `_ENV`.
    main: Function,
    /// The metatable of every run's environment: `__index` to the shared,
    /// read-only globals, `__metatable` protected.
    env_meta: Table,
    /// Sets the environment `load` gives chunks that do not pass one.
    set_load_env: Function,
    /// Memory in use right after preparing.
    baseline: usize,
}

impl Prepared {
    fn new(compiled: &Compiled) -> mlua::Result<Prepared> {
        let lua = Lua::new_with(
            StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH,
            LuaOptions::new(),
        )?;
        let tripped = Arc::new(Tripped::default());
        let globals = lua.globals();
        for name in ["dofile", "loadfile", "collectgarbage"] {
            globals.raw_set(name, Value::Nil)?;
        }
        let string: Table = globals.get("string")?;
        string.raw_set("dump", Value::Nil)?;
        let hit = tripped.clone();
        let limit_hit = lua.create_function(move |_, ()| Ok(hit.hit.load(Ordering::Relaxed)))?;
        let set_load_env: Function = run_builtin_chunk(&lua, "guards", GUARDS, limit_hit)?;
        api::install_shared(&lua, &compiled.file_name)?;
        let (close, set_timeout) = api::conn_functions(&lua)?;
        let io = api::io_function(&lua)?;
        run_builtin_chunk::<()>(&lua, "api", api::PRELUDE, (io, close, set_timeout))?;
        let env_meta: Table = run_builtin_chunk(&lua, "lock", LOCK, ())?;
        let main = lua
            .load(&compiled.bytecode[..])
            .set_name(format!("@{}", compiled.file_name))
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        let baseline = lua.used_memory();
        Ok(Prepared {
            lua,
            tripped,
            main,
            env_meta,
            set_load_env,
            baseline,
        })
    }

    /// A pooled state for `compiled`, or a newly prepared one.
    fn take(compiled: &Compiled) -> mlua::Result<Prepared> {
        let pooled = with_pools(|pools| {
            let pool = pools.get_mut(&compiled.path)?;
            if pool.stamp != compiled.stamp {
                return None;
            }
            pool.idle.pop()
        });
        if let Some(prepared) = pooled {
            return Ok(prepared);
        }
        let prepared = Prepared::new(compiled)?;
        with_pools(|pools| {
            let pool = pools.entry(compiled.path.clone()).or_insert(Pool {
                stamp: compiled.stamp,
                idle: Vec::new(),
                prepared: 0,
            });
            if pool.stamp != compiled.stamp {
                *pool = Pool {
                    stamp: compiled.stamp,
                    idle: Vec::new(),
                    prepared: 0,
                };
            }
            pool.prepared += 1;
        });
        Ok(prepared)
    }

    /// Back to the pool, unless the pool is full, the script changed, or the
    /// state kept more memory than garbage collection gives back.
    fn give_back(self, path: &Path, stamp: Stamp) {
        if self.lua.used_memory() > self.baseline + POOL_SLACK_BYTES
            && (self.lua.gc_collect().is_err()
                || self.lua.used_memory() > self.baseline + POOL_SLACK_BYTES)
        {
            return;
        }
        with_pools(|pools| {
            if let Some(pool) = pools.get_mut(path)
                && pool.stamp == stamp
                && pool.idle.len() < POOL_PER_SCRIPT
            {
                pool.idle.push(self);
            }
        });
    }
}

/// What Lua runs did since start, for the metrics page.
#[derive(Clone, Debug, Default)]
pub struct LuaStats {
    /// Runs of monitors and alerts (each `lua:` run of a script).
    pub runs: u64,
    /// Runs stopped by a limit (instruction budget, deadline, memory).
    pub limit_hits: u64,
    /// How long the runs took.
    pub durations: crate::metrics::Histogram,
}

static STATS: std::sync::LazyLock<std::sync::Mutex<LuaStats>> =
    std::sync::LazyLock::new(Default::default);

/// A copy of the run counts (held for a moment, never across an await).
pub fn stats() -> LuaStats {
    STATS.lock().map(|s| s.clone()).unwrap_or_default()
}

/// `json.encode(json.decode(text))` in a fresh state with the shared host
/// API, as a script calls them: the decoder's and encoder's behaviour on
/// any input, for the fuzz target and tests. Errors come back as the
/// message a script would see.
pub fn json_round_trip(text: &[u8]) -> Result<String, String> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| e.to_string())?;
    api::install_shared(&lua, "json_round_trip").map_err(|e| e.to_string())?;
    let json: Table = lua.globals().get("json").map_err(|e| e.to_string())?;
    let decode: Function = json.get("decode").map_err(|e| e.to_string())?;
    let encode: Function = json.get("encode").map_err(|e| e.to_string())?;
    let input = lua.create_string(text).map_err(|e| e.to_string())?;
    let value: Value = decode.call(input).map_err(|e| e.to_string())?;
    encode.call(value).map_err(|e| e.to_string())
}

/// One run's Lua state with its limits armed and its own environment.
///
/// Dropping it returns the state to its script's pool, unless the run hit a
/// limit, timed out ([`Sandbox::spoil`]) or raised an error other than a
/// plain script error (see [`Sandbox::describe`]): such a state is dropped.
pub(crate) struct Sandbox {
    pub lua: Lua,
    /// This run's globals: a fresh table whose `__index` is the read-only
    /// shared globals, so whatever the run defines dies with the run.
    pub env: Table,
    pub file_name: String,
    prepared: Option<Prepared>,
    path: PathBuf,
    stamp: Stamp,
    dirty: AtomicBool,
    started: Instant,
}

/// Set once a limit trips; read by the hook and the `pcall` guard.
#[derive(Default)]
struct Tripped {
    hit: AtomicBool,
    instructions: AtomicU64,
}

impl Sandbox {
    /// A state for `compiled` (pooled or new) with the context as this run's
    /// globals and the limits armed for this run. The main chunk has not run
    /// yet (see [`Sandbox::run_main`]).
    pub fn new(
        compiled: &Compiled,
        context: &ScriptContext,
        limits: &LuaLimits,
        deadline: Instant,
    ) -> mlua::Result<Sandbox> {
        let prepared = Prepared::take(compiled)?;
        let lua = prepared.lua.clone();
        prepared.tripped.hit.store(false, Ordering::Relaxed);
        prepared.tripped.instructions.store(0, Ordering::Relaxed);
        arm(&lua, &prepared.tripped, limits, deadline)?;
        let env = lua.create_table()?;
        env.raw_set("_G", &env)?;
        api::install_run(&lua, &env, context)?;
        env.set_metatable(Some(prepared.env_meta.clone()))?;
        if !prepared.main.set_environment(env.clone())? {
            return Err(mlua::Error::runtime("the main chunk has no _ENV"));
        }
        prepared.set_load_env.call::<()>(&env)?;
        Ok(Sandbox {
            lua,
            env,
            file_name: compiled.file_name.clone(),
            prepared: Some(prepared),
            path: compiled.path.clone(),
            stamp: compiled.stamp,
            dirty: AtomicBool::new(false),
            started: Instant::now(),
        })
    }

    /// Run the script's main chunk (it defines `check` or `alert`).
    pub async fn run_main(&self) -> mlua::Result<()> {
        let main = match &self.prepared {
            Some(prepared) => prepared.main.clone(),
            None => return Err(mlua::Error::runtime("the Lua state is gone")),
        };
        main.call_async::<()>(()).await
    }

    /// The run's global function `name`, or an error naming the script.
    pub fn function(&self, name: &str) -> Result<Function, String> {
        match self.env.get::<Value>(name) {
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

    /// A one-line reason for a failed call: `NAME.lua:LINE: message`. An
    /// error that is not a plain script error (out of memory, a limit, a
    /// panic) marks the state as not reusable.
    pub fn describe(&self, error: &mlua::Error) -> String {
        if !plain_error(error) {
            self.spoil();
        }
        if matches!(error, mlua::Error::MemoryError(_))
            && let Ok(mut stats) = STATS.lock()
        {
            stats.limit_hits += 1;
        }
        describe_error(error, &self.file_name)
    }

    /// Do not reuse this state (the run timed out, or may have left it in a
    /// state a later run should not see).
    pub fn spoil(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let Some(prepared) = self.prepared.take() else {
            return;
        };
        let hit = prepared.tripped.hit.load(Ordering::Relaxed);
        if let Ok(mut stats) = STATS.lock() {
            stats.runs += 1;
            stats.limit_hits += u64::from(hit);
            stats.durations.observe(self.started.elapsed());
        }
        if self.dirty.load(Ordering::Relaxed) || hit {
            return;
        }
        prepared.give_back(&self.path, self.stamp);
    }
}

/// A script's own error (`error(...)`, a bad argument, a failed API call):
/// it leaves the shared state as it was.
fn plain_error(error: &mlua::Error) -> bool {
    match error {
        mlua::Error::RuntimeError(_)
        | mlua::Error::SyntaxError { .. }
        | mlua::Error::ExternalError(_)
        | mlua::Error::FromLuaConversionError { .. } => true,
        mlua::Error::CallbackError { cause, .. }
        | mlua::Error::BadArgument { cause, .. }
        | mlua::Error::WithContext { cause, .. } => plain_error(cause),
        _ => false,
    }
}

/// The instruction budget, the deadline in the hook, the memory limit: set
/// again for every run.
fn arm(
    lua: &Lua,
    tripped: &Arc<Tripped>,
    limits: &LuaLimits,
    deadline: Instant,
) -> mlua::Result<()> {
    let tripped = tripped.clone();
    let budget = limits.instructions;
    lua.set_global_hook(
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
    lua.set_memory_limit(limits.memory_bytes)?;
    lua.set_app_data(api::Confinement {
        files_dir: limits.files_dir.clone(),
        allow_networks: limits.allow_networks.clone(),
    });
    Ok(())
}

/// Run one of keepmon's own Lua chunks with `args`; each is compiled once per
/// process and loaded as bytecode after that.
fn run_builtin_chunk<R: mlua::FromLuaMulti>(
    lua: &Lua,
    name: &str,
    source: &'static str,
    args: impl mlua::IntoLuaMulti,
) -> mlua::Result<R> {
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
        .call::<R>(args)
}

/// `pcall`, `xpcall` and `coroutine.resume` that re-raise a tripped limit,
/// and a `load` that accepts text chunks only and gives them the current
/// run's environment. Returns the setter for that environment.
const GUARDS: &str = r#"
local limit_hit = ...
local pcall, xpcall, error, load = pcall, xpcall, error, load
local resume = coroutine.resume
local run_env
local function guard(ok, ...)
  if not ok and limit_hit() then error((...), 0) end
  return ok, ...
end
_G.pcall = function(...) return guard(pcall(...)) end
_G.xpcall = function(...) return guard(xpcall(...)) end
coroutine.resume = function(...) return guard(resume(...)) end
_G.load = function(chunk, name, _, env)
  return load(chunk, name, "t", env or run_env)
end
return function(env) run_env = env end
"#;

/// Make what runs of one state share read-only: every library and API table
/// becomes a proxy whose writes raise an error and whose metatable is
/// protected; `rawset` refuses them; the string metatable is protected; and
/// the shared globals lose `_G`, so a run's `_G` is only ever its own
/// environment. Returns the metatable for the runs' environments.
const LOCK: &str = r#"
local G = _G
local next, error, setmetatable, getmetatable, rawset, ipairs =
  next, error, setmetatable, getmetatable, rawset, ipairs
local locked = setmetatable({}, { __mode = "k" })
local function readonly(name, real)
  local proxy = {}
  local function refuse() error(name .. " is read-only", 2) end
  setmetatable(proxy, {
    __index = real,
    __newindex = refuse,
    __pairs = function() return function(_, k) return next(real, k) end, proxy, nil end,
    __len = function() return #real end,
    __metatable = false,
  })
  locked[proxy] = true
  return proxy
end
for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine",
                        "tcp", "http", "dns", "file", "log", "json" }) do
  G[name] = readonly(name, G[name])
end
getmetatable("").__metatable = false
G.rawset = function(t, k, v)
  if locked[t] then error("cannot rawset a read-only table", 2) end
  return rawset(t, k, v)
end
G._G = nil
return { __index = G, __metatable = false }
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

    /// Found by the lua_json fuzz target: decoding lost the last bits of
    /// some floats (2.2222222222222222e+77 came back ...224e+77).
    #[test]
    fn json_decode_keeps_floats_exact_and_refuses_junk() {
        for text in [
            "2.2222222222222222e+77",
            "[0.1,1e-300,-7.5]",
            "{\"a\":[1,2,{\"b\":null}]}",
        ] {
            let once = json_round_trip(text.as_bytes()).unwrap();
            assert_eq!(json_round_trip(once.as_bytes()).unwrap(), once, "{text}");
        }
        assert_eq!(
            json_round_trip(b"2.2222222222222222e+77").unwrap(),
            "2.2222222222222222e+77"
        );
        let error = json_round_trip(b"{\"a\":").unwrap_err();
        assert!(error.contains("json.decode"), "{error}");
    }

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
