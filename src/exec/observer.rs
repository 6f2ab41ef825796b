//! What a run tells the person watching it: on a terminal, a bar for the whole run and one for
//! the current cell, each with its ETA; when stderr is not a terminal (CI logs, `| tee`), one
//! plain line per finished cell; with `--no-progress`, only warnings and errors.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Receives a run's events. Methods take `&self`: an observer is shared by the loop and the
/// plans it runs.
pub trait Observer {
    /// A run of `cells` cells and `requests` requests starts.
    fn started(&self, _cells: usize, _requests: usize) {}
    fn cell_started(&self, _label: &str, _requests: usize) {}
    /// What the cell is doing now (`preparing`, `quantizing`, `running`).
    fn cell_phase(&self, _label: &str, _phase: &str) {}
    fn request_done(&self, _ok: bool) {}
    fn cell_done(&self, _label: &str) {}
    /// A cell that could not run: always reported.
    fn cell_failed(&self, label: &str, reason: &str) {
        eprintln!("error: cell {label}: {reason}");
    }
    /// A warning, one line: always reported.
    fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }
    /// A line to show as it is (a child cell's own output).
    fn note(&self, msg: &str) {
        eprintln!("{msg}");
    }
    /// The run is over: bars go away.
    fn finish(&self) {}
}

/// Progress on stderr.
pub struct Progress {
    /// What a request is called in messages (`requests`, `runs`).
    unit: &'static str,
    style: Style,
    state: Mutex<State>,
}

enum Style {
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
        cell: ProgressBar,
    },
    Lines,
    Quiet,
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    cells: usize,
    total: usize,
    done: usize,
    cell_index: usize,
    cell_total: usize,
    cell_started: Option<Instant>,
    cell_done: usize,
    cell_failed: usize,
}

impl Progress {
    /// Progress `shown`: bars when stderr is a terminal, else a line per finished cell; not
    /// shown, warnings and errors only.
    pub fn new(shown: bool, unit: &'static str) -> Progress {
        let style = match shown {
            false => Style::Quiet,
            true if std::io::stderr().is_terminal() => bars(unit),
            true => Style::Lines,
        };
        Progress {
            unit,
            style,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints a line without tearing the bars.
    fn line(&self, text: &str) {
        let shown = match &self.style {
            Style::Bars { multi, .. } => multi.println(text).is_ok(),
            _ => false,
        };
        if !shown {
            eprintln!("{text}");
        }
    }

    /// `[2/3] label: 23 requests in 41.2 s; 46/69 requests done, about 1m 20s left`.
    fn cell_line(&self, label: &str, outcome: &str) -> String {
        let s = self.state();
        let took = s.cell_started.map(|t| t.elapsed()).unwrap_or_default();
        let left = eta(s.started, s.done, s.total)
            .filter(|_| s.done < s.total)
            .map(|d| format!(", about {} left", human(d)))
            .unwrap_or_default();
        format!(
            "[{}/{}] {label}: {outcome} in {}; {}/{} {} done{left}",
            s.cell_index,
            s.cells,
            human(took),
            s.done,
            s.total,
            self.unit
        )
    }
}

fn bars(unit: &str) -> Style {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let overall = multi.add(ProgressBar::new(0));
    let cell = multi.add(ProgressBar::new(0));
    let t = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} (eta {{eta}}) {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&t) {
        overall.set_style(style);
    }
    if let Ok(style) =
        ProgressStyle::with_template("  {prefix} {bar:30} {pos}/{len} (eta {eta}) {msg}")
    {
        cell.set_style(style);
    }
    Style::Bars {
        multi,
        overall,
        cell,
    }
}

/// Time left at the rate so far; `None` before anything finished.
fn eta(started: Option<Instant>, done: usize, total: usize) -> Option<Duration> {
    let elapsed = started?.elapsed();
    (done > 0 && total >= done).then(|| elapsed.mul_f64((total - done) as f64 / done as f64))
}

/// `41.2 s`, `3m 05s`, `1h 02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Observer for Progress {
    /// A run starts: counting starts over (a sweep's judge panel is a run of its own).
    fn started(&self, cells: usize, requests: usize) {
        let mut s = self.state();
        *s = State {
            started: Some(Instant::now()),
            cells,
            total: requests,
            ..State::default()
        };
        if let Style::Bars { overall, .. } = &self.style {
            overall.set_length(requests as u64);
        }
    }

    fn cell_started(&self, label: &str, requests: usize) {
        let mut s = self.state();
        s.cell_index += 1;
        s.cell_total = requests;
        s.cell_started = Some(Instant::now());
        s.cell_done = 0;
        s.cell_failed = 0;
        if let Style::Bars { cell, .. } = &self.style {
            cell.reset();
            cell.set_length(requests as u64);
            cell.set_prefix(label.to_string());
            cell.set_message("");
        }
    }

    fn cell_phase(&self, _label: &str, phase: &str) {
        if let Style::Bars { cell, .. } = &self.style {
            cell.set_message(phase.to_string());
        }
    }

    fn request_done(&self, ok: bool) {
        let mut s = self.state();
        s.done += 1;
        s.cell_done += 1;
        s.cell_failed += usize::from(!ok);
        if let Style::Bars { overall, cell, .. } = &self.style {
            overall.inc(1);
            cell.inc(1);
        }
    }

    fn cell_done(&self, label: &str) {
        if let Style::Lines = self.style {
            let (n, failed) = {
                let s = self.state();
                (s.cell_done, s.cell_failed)
            };
            let failed = match failed {
                0 => String::new(),
                f => format!(" ({f} failed)"),
            };
            self.line(&self.cell_line(label, &format!("{n} {}{failed}", self.unit)));
        }
    }

    fn cell_failed(&self, label: &str, reason: &str) {
        {
            // The cell's other requests will not run: count them as done for the ETA.
            let mut s = self.state();
            let left = s.cell_total.saturating_sub(s.cell_done);
            s.done += left;
            if let Style::Bars { overall, .. } = &self.style {
                overall.inc(left as u64);
            }
        }
        self.line(&format!("error: cell {label}: {reason}"));
    }

    fn warn(&self, msg: &str) {
        self.line(&format!("warning: {msg}"));
    }

    fn note(&self, msg: &str) {
        self.line(msg);
    }

    fn finish(&self) {
        if let Style::Bars { overall, cell, .. } = &self.style {
            cell.finish_and_clear();
            overall.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_counts_from_the_start() {
        let p = Progress::new(false, "requests");
        p.started(3, 9);
        for _ in 0..3 {
            p.cell_started("cell", 3);
            (0..3).for_each(|_| p.request_done(true));
        }
        p.started(1, 9);
        p.cell_started("judge", 9);
        (0..9).for_each(|_| p.request_done(true));
        let line = p.cell_line("judge", "9 requests");
        assert!(line.starts_with("[1/1] judge: 9 requests in "), "{line}");
        assert!(line.ends_with("; 9/9 requests done"), "{line}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(41_200)), "41.2 s");
        assert_eq!(human(Duration::from_secs(185)), "3m 05s");
        assert_eq!(human(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn the_eta_follows_the_rate_so_far() {
        let start = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
        let left = eta(Some(start), 1, 3).unwrap();
        assert!((19..=21).contains(&left.as_secs()), "{left:?}");
        assert_eq!(eta(Some(start), 0, 3), None);
        assert_eq!(eta(None, 1, 3), None);
    }
}
