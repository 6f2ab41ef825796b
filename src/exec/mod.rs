//! The one run loop. Every command that measures (bench, sweep, compare, profile, moe verify,
//! the judge panel) is a [`Plan`] run here: for each cell, the backend prepares it, then runs
//! the plan's requests one at a time; the plan turns each reply into records, which go to the
//! sink as they are made. The loop watches the machine's load around every request, reports
//! progress to an [`Observer`], runs a cell in a child process when the plan asks for it, and
//! stops between requests when the user interrupts the run.

pub mod child;
pub mod observer;
pub mod signals;

use crate::backend::{Backend, CellError, Reply, Request, Setup};
use crate::hw::load::{self, LoadMonitor};
use crate::record::{CellInfo, LoadReport, Record};
pub use observer::Observer;
use std::time::{Duration, Instant};
use thiserror::Error;

/// One cell of a plan: what its backend prepares, and how it runs.
#[derive(Debug, Clone)]
pub struct Cell {
    /// How progress and errors name it, e.g. `smollm2-135m/q4_k_m`.
    pub label: String,
    /// Which of the run's backends runs it.
    pub backend: usize,
    pub setup: Setup,
    /// Requests the plan will run in it (for progress).
    pub requests: usize,
    /// Run it in a child process (`runner` with these arguments), so that an abort or
    /// out-of-memory in llama.cpp loses this cell only.
    pub isolate: Option<Vec<String>>,
    /// Why the cell must not start (it would not fit in memory): it fails with this reason.
    pub refuse: Option<String>,
}

impl Cell {
    /// A cell run in this process by backend `backend`.
    pub fn new(label: String, backend: usize, setup: Setup, requests: usize) -> Cell {
        Cell {
            label,
            backend,
            setup,
            requests,
            isolate: None,
            refuse: None,
        }
    }
}

/// What the loop saw around one request.
pub struct Observed<'a> {
    /// The cell's description, from its preparation.
    pub info: &'a CellInfo,
    /// Other processes' load during the request and the seconds before it.
    pub load: LoadReport,
    /// The largest resident set size of this process seen during the request.
    pub peak_rss: u64,
    /// When the request started and ended.
    pub start: Instant,
    pub end: Instant,
    /// The load monitor, for windows of the plan's own (a test over its repetitions).
    pub monitor: &'a LoadMonitor,
    pub busy_threshold: f64,
    /// Where the plan's warnings go.
    pub obs: &'a dyn Observer,
}

/// A measurement to run: its cells and requests, and what their replies record.
pub trait Plan {
    fn cells(&self) -> &[Cell];
    /// The next request of cell `cell` (an id for [`Plan::request`]), or `None` when the cell
    /// is done. Replies so far may decide it.
    fn next(&mut self, cell: usize) -> Option<usize>;
    /// The request with this id.
    fn request(&self, cell: usize, id: usize) -> Request<'_>;
    /// Called once the cell is prepared; may add to what its records say it ran on.
    fn prepared(&mut self, _cell: usize, _info: &mut CellInfo) -> Result<(), String> {
        Ok(())
    }
    /// The records a reply makes (none while a test's repetitions are still running).
    fn reply(&mut self, cell: usize, id: usize, reply: Reply, seen: &Observed<'_>) -> Vec<Record>;
    /// The records made when the cell is done.
    fn cell_done(&mut self, _cell: usize, _info: &CellInfo) -> Vec<Record> {
        Vec::new()
    }
    /// The records of a cell that could not run.
    fn cell_failed(&mut self, _cell: usize, _reason: &str) -> Vec<Record> {
        Vec::new()
    }
}

/// Where records go as they are made.
pub trait Sink {
    fn append(&mut self, record: &Record) -> Result<(), String>;
    /// Appends each of `records` in turn, until one cannot be written.
    fn append_all(&mut self, records: &[Record]) -> Result<(), String> {
        records.iter().try_for_each(|r| self.append(r))
    }
}

/// Records kept in memory.
impl Sink for Vec<Record> {
    fn append(&mut self, record: &Record) -> Result<(), String> {
        self.push(record.clone());
        Ok(())
    }
}

impl Sink for crate::record::ResultsFile {
    fn append(&mut self, record: &Record) -> Result<(), String> {
        crate::record::ResultsFile::append(self, record).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Error)]
pub enum ExecError {
    /// The user interrupted the run; what was recorded stays.
    #[error("interrupted")]
    Interrupted,
    /// `--require-idle` and the machine is busy.
    #[error("{0}; refusing to start (--require-idle)")]
    Busy(String),
    /// A record could not be written: the run cannot go on without losing results.
    #[error("{0}")]
    Sink(String),
    /// A cell's model is one llama.cpp will not load, in a run that stops there
    /// ([`Options::stop_on_refusal`]).
    #[error("{0}")]
    Refused(String),
}

/// How the loop runs.
pub struct Options<'a> {
    pub monitor: &'a LoadMonitor,
    /// Other load, in cores, above which a request counts as measured on a busy machine.
    pub busy_threshold: f64,
    /// A cell whose model llama.cpp will not load ends the run ([`ExecError::Refused`])
    /// instead of failing alone.
    pub stop_on_refusal: bool,
}

/// Checks the machine before a run: refuses a busy one with `require_idle`, else warns.
pub fn check_idle(
    monitor: &LoadMonitor,
    threshold: f64,
    require_idle: bool,
    obs: &dyn Observer,
) -> Result<(), ExecError> {
    match load::busy_before_start(monitor, threshold) {
        None => Ok(()),
        Some(msg) if require_idle => Err(ExecError::Busy(msg)),
        Some(msg) => {
            obs.warn(&format!(
                "{msg}; figures will be lower and noisier than on an idle machine"
            ));
            Ok(())
        }
    }
}

/// Runs every cell of `plan` with its backend, records to `sink`; why each failed cell failed,
/// in order.
pub fn run(
    plan: &mut dyn Plan,
    backends: &mut [&mut dyn Backend],
    sink: &mut dyn Sink,
    obs: &dyn Observer,
    opts: &Options<'_>,
) -> Result<Vec<String>, ExecError> {
    let total: usize = plan.cells().iter().map(|c| c.requests).sum();
    obs.started(plan.cells().len(), total);
    let mut failures = Vec::new();
    for c in 0..plan.cells().len() {
        stop_if_interrupted()?;
        let cell = plan.cells()[c].clone();
        if cell.requests == 0 {
            continue;
        }
        obs.cell_started(&cell.label, cell.requests);
        let result = match (&cell.refuse, &cell.isolate) {
            (Some(reason), _) => Err(CellError::Failed(reason.clone())),
            (None, Some(args)) => child::run(args, obs, opts.monitor),
            (None, None) => match backends.get_mut(cell.backend) {
                Some(b) => in_process(plan, c, &cell, &mut **b, sink, obs, opts),
                None => Err(CellError::Failed(format!(
                    "no backend {} for cell {}",
                    cell.backend, cell.label
                ))),
            },
        };
        opts.monitor.count_as_own(Vec::new());
        stop_if_interrupted()?;
        match result {
            Ok(()) => obs.cell_done(&cell.label),
            Err(CellError::Refused(reason)) if opts.stop_on_refusal => {
                return Err(ExecError::Refused(reason))
            }
            // Without its records the run cannot go on: one error, not a failed cell too.
            Err(CellError::Sink(reason)) => return Err(ExecError::Sink(reason)),
            Err(e) => {
                let reason = e.to_string();
                failures.push(reason.clone());
                obs.cell_failed(&cell.label, &reason);
                (sink.append_all(&plan.cell_failed(c, &reason))).map_err(ExecError::Sink)?;
            }
        }
    }
    Ok(failures)
}

/// The id `*next`, counted as taken, while it is below `end`: the next request of a plan that
/// runs its requests in order.
pub fn take_next(next: &mut usize, end: usize) -> Option<usize> {
    let id = *next;
    *next += 1;
    (id < end).then_some(id)
}

fn stop_if_interrupted() -> Result<(), ExecError> {
    match crate::util::interrupt::requested() {
        true => Err(ExecError::Interrupted),
        false => Ok(()),
    }
}

/// Runs every cell of `plan` with llama.cpp in this process; a model llama.cpp will not load
/// ends the run ([`ExecError::Refused`]).
pub fn run_native(
    plan: &mut dyn Plan,
    sink: &mut dyn Sink,
    obs: &dyn Observer,
    monitor: &LoadMonitor,
    busy_threshold: f64,
    verbose: bool,
) -> Result<Vec<String>, ExecError> {
    let mut native = crate::backend::native::Native::new(verbose);
    let opts = Options {
        monitor,
        busy_threshold,
        stop_on_refusal: true,
    };
    run(plan, &mut [&mut native], sink, obs, &opts)
}

/// Runs one cell in this process; `Err` says why the cell failed.
fn in_process(
    plan: &mut dyn Plan,
    c: usize,
    cell: &Cell,
    backend: &mut dyn Backend,
    sink: &mut dyn Sink,
    obs: &dyn Observer,
    opts: &Options<'_>,
) -> Result<(), CellError> {
    obs.cell_phase(&cell.label, "preparing");
    let prepared = backend.prepare(&cell.setup).and_then(|mut info| {
        plan.prepared(c, &mut info)?;
        Ok(info)
    });
    let info = prepared.inspect_err(|_| backend.release())?;
    obs.cell_phase(&cell.label, "running");
    opts.monitor.count_as_own(backend.serving_pids());
    // The first request's load before it is measured, even in a cell process that has just
    // started its monitor.
    opts.monitor
        .await_sample_after(opts.monitor.started(), Duration::from_secs(1));
    let result = (|| {
        let interrupted = crate::util::interrupt::requested;
        while let Some(id) = plan.next(c).filter(|_| !interrupted()) {
            let start = Instant::now();
            let reply = backend.run(&plan.request(c, id));
            if interrupted() {
                // An interrupted request is not recorded: a resumed run runs it again.
                return Ok(());
            }
            let seen = observed(opts, &info, obs, start);
            let ok = !matches!(reply, Reply::Failed(_));
            let records = plan.reply(c, id, reply, &seen);
            if interrupted() {
                // Nor is one whose grading the interrupt cut short.
                return Ok(());
            }
            sink.append_all(&records).map_err(CellError::Sink)?;
            obs.request_done(ok);
        }
        Ok::<(), CellError>(())
    })();
    opts.monitor.count_as_own(Vec::new());
    backend.release();
    result?;
    (sink.append_all(&plan.cell_done(c, &info))).map_err(CellError::Sink)
}

/// What the loop saw of a request that ran from `start` until now: other processes' load
/// during it and the two seconds before it, and the peak resident memory of this process
/// meanwhile.
fn observed<'a>(
    opts: &Options<'a>,
    info: &'a CellInfo,
    obs: &'a dyn Observer,
    start: Instant,
) -> Observed<'a> {
    let end = Instant::now();
    let m = opts.monitor;
    let before = m.window(
        start.checked_sub(Duration::from_secs(2)).unwrap_or(start),
        start,
    );
    let during = m.window(start, end);
    Observed {
        info,
        load: LoadReport::of(&before, &during, opts.busy_threshold),
        peak_rss: during.peak_rss.max(load::current_rss()),
        start,
        end,
        monitor: m,
        busy_threshold: opts.busy_threshold,
        obs,
    }
}
