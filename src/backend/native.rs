//! The native backend: llama.cpp in-process, each (model, quantization) cell in its own
//! `runner sweep-cell` child process, so that an abort or out-of-memory in llama.cpp loses
//! that cell only.

use super::Backend;
use crate::sweep::spec::{CellSpec, Progress};
use indicatif::ProgressBar;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// llama.cpp in-process, through a child process per cell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Backend for Native {
    fn run_cell(&self, spec: &CellSpec, bar: &ProgressBar) -> Result<(), String> {
        run_cell(spec, bar)
    }
}

/// Runs one cell in a child process; `Err` holds why the cell failed.
fn run_cell(spec: &CellSpec, bar: &ProgressBar) -> std::result::Result<(), String> {
    let label = format!("{}/{}", spec.cell.model, spec.cell.quant);
    bar.set_message(format!("{label}: preparing"));
    let dir = tempfile::Builder::new()
        .prefix("runner-cell")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let spec_path = dir.path().join("cell.json");
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    std::fs::write(&spec_path, json).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find runner's own binary: {e}"))?;
    let mut child = Command::new(exe)
        .arg("sweep-cell")
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the cell process: {e}"))?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || forward_stderr(stderr));
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            match serde_json::from_str::<Progress>(&line) {
                Ok(Progress::Loaded { .. }) => bar.set_message(label.clone()),
                Ok(Progress::Request { .. }) => bar.inc(1),
                Err(_) => {}
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let last = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(exit_reason(status, last))
}

/// Copies the child's stderr to ours; returns its last non-empty line.
fn forward_stderr(stderr: Option<std::process::ChildStderr>) -> Option<String> {
    let mut last = None;
    for line in BufReader::new(stderr?)
        .lines()
        .map_while(std::result::Result::ok)
    {
        if !line.trim().is_empty() {
            eprintln!("{line}");
            last = Some(line);
        }
    }
    last
}

fn exit_reason(status: std::process::ExitStatus, last: Option<String>) -> String {
    let why = last
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or_default();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                6 => "SIGABRT: llama.cpp aborted".to_string(),
                9 => "SIGKILL: killed, often for running out of memory".to_string(),
                11 => "SIGSEGV: crashed".to_string(),
                n => format!("signal {n}"),
            };
            return if why.is_empty() {
                name
            } else {
                format!("{name}: {why}")
            };
        }
    }
    if why.is_empty() {
        format!("the cell process exited with {status}")
    } else {
        why
    }
}
