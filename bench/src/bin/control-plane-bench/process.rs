//! A child process of the benchmark (a control plane or a worker). Its output is read all the
//! time, because a full pipe would block the child's logging and with it the child; every line
//! is handed to an observer together with the instant it arrived, and the last lines are kept
//! for error messages. The process is killed when dropped, so an error, a timed-out phase or an
//! interruption never leaves one behind.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Lines kept for error messages.
const TAIL_LINES: usize = 200;

/// Called for every line with its message (the whole line unless it is a JSON log event), the
/// event's fields (`Null` for other lines) and the instant the line arrived.
pub type Observer = Arc<dyn Fn(&str, &Value, Instant) + Send + Sync>;

pub struct Child {
    name: String,
    child: tokio::process::Child,
    pid: u32,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Child {
    /// Starts `program` with JSON logs expected on stdout (the gateway's `--log-format json`).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cwd: Option<&Path>,
        observer: Option<Observer>,
    ) -> anyhow::Result<Child> {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_lines(stdout, tail.clone(), observer.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(read_lines(stderr, tail.clone(), observer));
        }
        Ok(Child {
            name: name.to_owned(),
            child,
            pid,
            tail,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for a log message starting with `prefix` and returns the rest of it.
    pub async fn wait_for_message(
        &mut self,
        prefix: &str,
        within: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(rest) = self.find(prefix) {
                return Ok(rest);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The readers may not have handed over the last lines yet.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(rest) = self.find(prefix) {
                    return Ok(rest);
                }
                bail!(
                    "{} exited with {status} before logging {prefix:?}:\n{}",
                    self.name,
                    self.tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log {prefix:?} within {within:?}:\n{}",
                    self.name,
                    self.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn find(&self, prefix: &str) -> Option<String> {
        let tail = self.tail.lock().ok()?;
        tail.iter().find_map(|line| {
            let (message, _) = parse(line);
            message.strip_prefix(prefix).map(str::to_owned)
        })
    }

    /// The last lines of output, for error messages.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// An error if the process has exited, naming how and what it printed last.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => bail!("{} exited with {status}:\n{}", self.name, self.tail()),
            Ok(None) => Ok(()),
            Err(error) => bail!("cannot check on {}: {error}", self.name),
        }
    }

    /// Kills the process and waits until it is gone.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The message and fields of a JSON log event; any other line is all message.
fn parse(line: &str) -> (String, Value) {
    let Ok(mut event) = serde_json::from_str::<Value>(line) else {
        return (line.to_owned(), Value::Null);
    };
    let fields = event
        .get_mut("fields")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let message = fields
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or(line)
        .to_owned();
    (message, fields)
}

async fn read_lines(
    stream: impl AsyncRead + Unpin,
    tail: Arc<Mutex<VecDeque<String>>>,
    observer: Option<Observer>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let arrived = Instant::now();
        if let Some(observer) = &observer {
            let (message, fields) = parse(&line);
            observer(&message, &fields, arrived);
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}
