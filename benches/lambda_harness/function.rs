//! One Lambda function process under its own loopback Runtime API, and what can be read of it from
//! `/proc` (CPU time, peak RSS).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use stream_gate_testkit::fake_runtime_api::{lambda_env, Invocation, RuntimeApi};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a function: the program, its arguments and the environment beyond Lambda's own.
#[derive(Clone)]
pub struct Launch {
    /// Shown in the tables.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A function process running against its own Runtime API; killed on drop.
pub struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
    pub name: String,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User and system CPU time of a process (all its threads, live and ended), from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;
    fn sub(self, rhs: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(rhs.user),
            system: self.system.saturating_sub(rhs.system),
        }
    }
}

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on every Linux configuration Lambda
/// and this harness run on).
const USER_HZ: u64 = 100;

impl Function {
    /// Spawns the function with `first` already queued; returns it, spawn -> first answer, and the
    /// answer.
    pub async fn cold_start(
        launch: &Launch,
        first: Value,
    ) -> Result<(Self, Duration, Invocation), String> {
        let api = Arc::new(RuntimeApi::start().await.map_err(|e| e.to_string())?);
        let queued = {
            let api = api.clone();
            tokio::spawn(async move { api.invoke(first, TIMEOUT).await })
        };
        let started = Instant::now();
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(lambda_env(&api, &launch.name))
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", launch.program.display()))?;
        let f = Self {
            api,
            child,
            name: launch.name.clone(),
        };
        let answer = queued
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", launch.name))?;
        let elapsed = started.elapsed();
        if let Some(e) = f.api.init_error() {
            return Err(format!(
                "{} reported an init error: {}",
                launch.name, e.body
            ));
        }
        Ok((f, elapsed, answer))
    }

    pub async fn invoke(&self, event: Value) -> Result<(Duration, Invocation), String> {
        let t = Instant::now();
        let answer = self
            .api
            .invoke(event, TIMEOUT)
            .await
            .map_err(|e| format!("{}: {e}", self.name))?;
        Ok((t.elapsed(), answer))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time used so far (fields 14 and 15 of `/proc/PID/stat`, after the command name).
    pub fn cpu(&self) -> Result<CpuTime, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map_err(|e| format!("{}: /proc stat: {e}", self.name))?;
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or("unreadable /proc stat")?;
        // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| -> Result<Duration, String> {
            let t: u64 = fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or("unreadable /proc stat")?;
            Ok(Duration::from_micros(t * 1_000_000 / USER_HZ))
        };
        Ok(CpuTime {
            user: ticks(11)?,
            system: ticks(12)?,
        })
    }
}

pub fn describe(answer: &Invocation) -> String {
    match answer {
        Invocation::Response(v) => {
            let effect = v["policyDocument"]["Statement"][0]["Effect"].as_str();
            match (effect, v["statusCode"].as_u64()) {
                (Some(e), _) => e.to_owned(),
                (None, Some(code)) => format!("status {code}"),
                _ => "response".to_owned(),
            }
        }
        Invocation::Error(_) => "LAMBDA ERROR".to_owned(),
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
