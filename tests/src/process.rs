//! A child process whose output is echoed into the test log and searchable, that can be signalled
//! and waited for, and that is killed on drop.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub struct Process {
    name: String,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(name: &str, program: &Path, args: &[String], cwd: Option<&Path>) -> Process {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info");
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            collect(name, stdout, output.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            collect(name, stderr, output.clone());
        }
        Process {
            name: name.to_owned(),
            child,
            output,
        }
    }

    /// Waits for a line containing `marker` and returns what follows it up to the next space.
    pub fn wait_for(&mut self, marker: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(value) = self.find(marker) {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The readers may still hold the last lines.
                std::thread::sleep(Duration::from_millis(50));
                if let Some(value) = self.find(marker) {
                    return value;
                }
                panic!(
                    "{} exited with {status} before printing {marker:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {marker:?} within {within:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn find(&self, marker: &str) -> Option<String> {
        let lines = self.output.lock().ok()?;
        lines.iter().find_map(|line| {
            let start = line.find(marker)? + marker.len();
            Some(
                line[start..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
    }

    pub fn log(&self) -> String {
        self.output
            .lock()
            .map(|lines| lines.join("\n"))
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` to the process (not to its group), as an orchestrator stopping it would.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in pid_t");
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
            .unwrap_or_else(|e| panic!("send {signal} to {}: {e}", self.name));
    }

    /// The exit status if the process has exited, without waiting.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit by itself without blocking the async runtime, so that the
    /// test's clients keep running meanwhile; panics with the log once `within` has passed.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect(name: &str, stream: impl Read + Send + 'static, output: Arc<Mutex<Vec<String>>>) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            // Captured by the test harness and shown only when the test fails.
            println!("[{name}] {line}");
            if let Ok(mut lines) = output.lock() {
                lines.push(line);
            }
        }
    });
}
