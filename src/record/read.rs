//! Reads records back: bench JSON (an array or one record), bench JSONL and sweep JSONL, from
//! one file or recursively under a directory, in a fixed order and without duplicates (and of
//! a load level, one run), for the readers of records (hardware guide, HTML report, regression
//! check).

use super::io::{io_err, ResultsError};
use super::schema::{BenchRecord, CellFailure, Judgement, Record, RequestRecord};
use super::ProfileReport;
use crate::util::fs::{read_input_bytes, Input};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every record found, with where it came from.
#[derive(Debug, Default)]
pub struct Records {
    /// `runner bench` records.
    pub bench: Vec<BenchRecord>,
    /// Requests of `runner sweep`.
    pub requests: Vec<RequestRecord>,
    /// Sweep cells that could not run.
    pub failures: Vec<CellFailure>,
    /// Judge panel verdicts on sweep requests.
    pub judgements: Vec<Judgement>,
    /// `runner profile` reports saved as JSON.
    pub profiles: Vec<ProfileReport>,
    /// Files that held at least one record, relative to the directory, sorted.
    pub files: Vec<String>,
    /// Lines or files that looked like JSON but were not records (left out).
    pub unreadable: usize,
    /// Other JSON values (a saved bandwidth probe, a note, a number in a bench array): not
    /// records, left out without a warning.
    pub other: usize,
    /// Records holding a figure that cannot be true (a negative rate, a time of 1e300 ms; see
    /// [`super::plausible`]), left out, and why the first of them was.
    pub implausible: usize,
    pub implausible_why: Option<String>,
    /// Records seen more than once (e.g. a copy in another folder), counted once.
    pub duplicates: usize,
    /// Load levels read from a run that lost records (none of their runs is complete), e.g.
    /// "native m/q8_0 c=4: 14 of 16 records".
    pub incomplete_levels: Vec<String>,
    /// Entries under the directory left out: a link that leads nowhere, or back into a folder
    /// being read (a loop), relative to the directory.
    pub skipped: Vec<String>,
}

impl Records {
    /// Says on stderr, in one line each, how many lines of `source` were left out as
    /// unreadable, and how many as holding figures that cannot be true (with the first's).
    pub fn warn_unreadable(&self, source: &Path) {
        let the_first = |n: usize| if n > 1 { "the first: " } else { "" };
        if !self.skipped.is_empty() {
            eprintln!(
                "warning: {}: {} entr{} left out (a link that leads nowhere, or back into a \
                 folder being read): {}",
                source.display(),
                self.skipped.len(),
                if self.skipped.len() == 1 { "y" } else { "ies" },
                self.skipped.join(", ")
            );
        }
        if self.unreadable > 0 {
            eprintln!(
                "warning: {}: {} line(s) are not records this runner reads (damaged, or \
                 another schema); left out",
                source.display(),
                self.unreadable
            );
        }
        if let Some(first) = self.incomplete_levels.first() {
            eprintln!(
                "warning: {}: {} load level(s) lost records, and their figures are of the \
                 records left ({}{})",
                source.display(),
                self.incomplete_levels.len(),
                the_first(self.incomplete_levels.len()),
                first
            );
        }
        if self.implausible > 0 {
            eprintln!(
                "warning: {}: {} record(s) hold figures that cannot be true ({}{}); left out",
                source.display(),
                self.implausible,
                the_first(self.implausible),
                self.implausible_why.as_deref().unwrap_or_default()
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bench records and requests measured on a busy machine (see
    /// [`LoadReport::busy_above`](crate::record::LoadReport::busy_above)).
    pub fn busy_count(&self, threshold: f64) -> usize {
        let bench = self.bench.iter().map(|r| &r.load);
        let requests = self.requests.iter().map(|q| &q.load);
        bench
            .chain(requests)
            .filter(|l| l.busy_above(threshold))
            .count()
    }

    /// Records of every kind.
    pub fn len(&self) -> usize {
        self.bench.len()
            + self.requests.len()
            + self.failures.len()
            + self.judgements.len()
            + self.profiles.len()
    }

    /// Every record as JSON Lines: bench records, sweep requests, failed cells, judgements,
    /// then profiles.
    pub fn to_jsonl(&self) -> serde_json::Result<String> {
        let records = self
            .bench
            .iter()
            .map(|r| Record::Bench(Box::new(r.clone())))
            .chain(
                self.requests
                    .iter()
                    .map(|r| Record::Request(Box::new(r.clone()))),
            )
            .chain(self.failures.iter().map(|f| Record::CellFailed(f.clone())))
            .chain(
                self.judgements
                    .iter()
                    .map(|j| Record::Judgement(Box::new(j.clone()))),
            )
            .chain(
                self.profiles
                    .iter()
                    .map(|p| Record::Profile(Box::new(p.clone()))),
            );
        records
            .map(|r| Ok(serde_json::to_string(&r)? + "\n"))
            .collect()
    }

    /// Refuses an output path that names one of the files these records were read from
    /// (`read`: the file or directory they were read from), before anything overwrites it.
    pub fn refuse_overwrite(&self, read: &Path, out: &Path) -> Result<(), crate::util::Invalid> {
        use crate::util::fs::same_file;
        let clash = match read.is_file() {
            true => same_file(read, out),
            false => self.files.iter().any(|f| same_file(&read.join(f), out)),
        };
        match clash {
            true => Err(crate::util::Invalid(format!(
                "{}: holds records this reads; write to another file",
                out.display()
            ))),
            false => Ok(()),
        }
    }

    /// Earliest and latest record time, each as written: compared as instants, so that times
    /// with other UTC offsets fall in their place.
    pub fn time_span(&self) -> Option<(String, String)> {
        let times = self
            .bench
            .iter()
            .map(|r| &r.provenance)
            .chain(self.requests.iter().map(|r| &r.provenance))
            .filter_map(|p| Some((p.instant()?, &p.time)));
        let min = times.clone().min_by_key(|(at, _)| *at)?.1.clone();
        let max = times.max_by_key(|(at, _)| *at)?.1.clone();
        Some((min, max))
    }
}

/// Reads one file, or every `*.json` and `*.jsonl` file under a directory in sorted path order.
/// Each is read through [`read_input`]: a path that is not a regular file (a FIFO, a device) is
/// refused, never waited on.
pub fn load(dir: &Path) -> Result<Records, ResultsError> {
    let mut files = Vec::new();
    let mut out = Records::default();
    if dir.is_dir() {
        let mut walk = Walk {
            root: dir,
            open: Vec::new(),
            read: BTreeSet::new(),
            files: &mut files,
            skipped: &mut out.skipped,
        };
        walk.dir(dir)?;
        files.sort();
        out.skipped.sort();
    } else if dir.exists() {
        files.push(dir.to_path_buf());
    } else {
        return Err(ResultsError::NotFound(dir.display().to_string()));
    }
    let mut seen = BTreeSet::new();
    for path in files {
        let bytes = read_input_bytes(&path, Input::Records).map_err(io_err(&path))?;
        let text = text_of(bytes);
        let before = out.len();
        for value in values(&path, &text, &mut out.unreadable) {
            add(value, &mut out, &mut seen);
        }
        if out.len() > before {
            let rel = path
                .strip_prefix(dir)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .unwrap_or(&path);
            out.files.push(rel.display().to_string());
        }
    }
    // Of each load level, one run, whichever files hold it.
    one_run_per_level(&mut out.requests, &mut out.incomplete_levels);
    Ok(out)
}

/// A records file's text. A line that is not UTF-8 (one cut inside a character when a run was
/// killed while writing it) becomes a line that is not a record, counted with the others,
/// instead of making the whole file unreadable.
fn text_of(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => (e.into_bytes().split(|&b| b == b'\n'))
            .map(|line| std::str::from_utf8(line).unwrap_or("\u{FFFD}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// How much of a file [`holds_records`] reads.
const SNIFF_BYTES: u64 = 1 << 20;

/// Whether `path` is an existing file that holds records (a sweep's or a bench's results):
/// a writer of a whole other kind of file (a model) must never replace it. The first MiB is
/// parsed; past it (a bench array of long runs, a first record over a MiB, lines of other
/// JSON first), a file that names both keys every record starts with counts too. A GGUF
/// model is known by its magic without reading further.
pub fn holds_records(path: &Path) -> bool {
    use std::io::Read;
    if !path.is_file() {
        return false;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::new();
    let read = (&mut file).take(SNIFF_BYTES).read_to_end(&mut head);
    if read.is_err() || head.starts_with(b"GGUF") {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let longer = head.len() as u64 >= SNIFF_BYTES;
    // A longer file: its whole lines only.
    let whole = match longer {
        true => text.rsplit_once('\n').map_or("", |(whole, _)| whole),
        false => &text,
    };
    let parsed = values(path, whole, &mut 0).into_iter().any(|v| {
        v.get("schema").is_some() || v.get("kind").is_some() || Record::from_value(v).is_ok()
    });
    parsed || (longer && names_record_keys(head, &mut file))
}

/// Refuses an output FILE that holds records ([`holds_records`]): a command writing its
/// output there would replace them, and records already taken are never lost. An empty file,
/// or one that holds a table or a summary, may be replaced. `what` is what the command writes,
/// for the hint; the error is why, which the caller puts after the path as it names it:
/// `-o FILE: holds records (a results file); write the tables to another file`.
pub fn refuse_records_output(path: &Path, what: &str) -> Result<(), String> {
    match holds_records(path) {
        true => Err(format!(
            "holds records (a results file); write {what} to another file"
        )),
        false => Ok(()),
    }
}

/// Whether the bytes of `head` and then the rest of `file` hold both `"schema"` and
/// `"runner_version"` as JSON keys (read a MiB at a time, each MiB with the end of the last).
fn names_record_keys(mut chunk: Vec<u8>, file: &mut std::fs::File) -> bool {
    use std::io::Read;
    let key = regex::bytes::Regex::new(r#""(schema|runner_version)"\s*:"#).expect("pattern");
    let (mut schema, mut version) = (false, false);
    loop {
        for m in key.find_iter(&chunk) {
            match m.as_bytes()[1] {
                b's' => schema = true,
                _ => version = true,
            }
        }
        if schema && version {
            return true;
        }
        chunk = chunk.split_off(chunk.len().saturating_sub(64));
        match file.take(SNIFF_BYTES).read_to_end(&mut chunk) {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
    }
}

/// Of each load level of `requests`, its one run: a level run again (after losing records, or
/// in another sweep) is read from its latest complete run alone. A level none of whose runs
/// is complete is named in `incomplete`.
fn one_run_per_level(requests: &mut Vec<RequestRecord>, incomplete: &mut Vec<String>) {
    let all: Vec<&RequestRecord> = requests.iter().collect();
    let runs = super::traffic::level_runs(all.iter().copied());
    incomplete.extend(super::traffic::incomplete(&runs).map(|r| {
        let name = format!("{} {}/{}", r.cell.backend, r.cell.model, r.cell.quant);
        // One line: a name's control characters escaped.
        let name: String = name
            .chars()
            .flat_map(|c| match c.is_control() {
                true => c.escape_debug().collect::<Vec<_>>(),
                false => vec![c],
            })
            .collect();
        let wrote = r.wrote.unwrap_or(r.found);
        format!("{name} {}: {} of {wrote} records", r.shape.label(), r.found)
    }));
    let mut keep = super::traffic::one_run_per_level(&all).into_iter();
    requests.retain(|_| keep.next().unwrap_or(true));
}

/// A walk of a results directory: each folder read once, links followed.
struct Walk<'a> {
    root: &'a Path,
    /// The folders being read, from the root down (canonical paths): a link to one is a loop.
    open: Vec<PathBuf>,
    /// Every folder read (canonical paths): a second link to one adds nothing.
    read: BTreeSet<PathBuf>,
    files: &'a mut Vec<PathBuf>,
    skipped: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path) -> Result<(), ResultsError> {
        let io = io_err(dir);
        let canonical = std::fs::canonicalize(dir).map_err(&io)?;
        if self.open.contains(&canonical) {
            self.skip(dir);
            return Ok(());
        }
        if !self.read.insert(canonical.clone()) {
            return Ok(());
        }
        self.open.push(canonical);
        for entry in std::fs::read_dir(dir).map_err(&io)? {
            let path = entry.map_err(&io)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            // Links followed; one that leads nowhere (or round in a circle of links) is left out.
            let Ok(meta) = std::fs::metadata(&path) else {
                self.skip(&path);
                continue;
            };
            if meta.is_dir() {
                self.dir(&path)?;
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "jsonl" | "ndjson")
            ) {
                self.files.push(path);
            }
        }
        self.open.pop();
        Ok(())
    }

    fn skip(&mut self, path: &Path) {
        let rel = path.strip_prefix(self.root).unwrap_or(path);
        self.skipped.push(rel.display().to_string());
    }
}

/// The JSON values of a file: the elements of a top-level array, one object, or one per line.
fn values(path: &Path, text: &str, unreadable: &mut usize) -> Vec<Value> {
    // A byte-order mark that some editors put before UTF-8 text is not part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let whole = path.extension().and_then(|e| e.to_str()) == Some("json");
    if whole {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => return items,
            Ok(v @ Value::Object(_)) => return vec![v],
            Ok(_) => return Vec::new(),
            Err(_) => {} // a .json file written as lines: read it as lines
        }
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) => Some(v),
            Err(_) => {
                *unreadable += 1;
                None
            }
        })
        .collect()
}

/// Writes every whole number that a float holds exactly (`91.0`) as the integer (`91`).
fn whole_numbers_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => *n = (f as i64).into(),
            _ => {}
        },
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// Files one value by its kind of record, once: a value seen before, whatever the order of
/// its keys and however its whole numbers are written (`91` or `91.0`), counts as a duplicate.
fn add(value: Value, out: &mut Records, seen: &mut BTreeSet<String>) {
    let mut canonical = value.clone();
    canonical.sort_all_objects();
    whole_numbers_as_integers(&mut canonical);
    if !seen.insert(canonical.to_string()) {
        out.duplicates += 1;
        return;
    }
    let has = |k: &str| value.get(k).is_some();
    let looks_like_one = has("schema") || has("kind") || (has("test") && has("samples"));
    let record = Record::from_value(value);
    if let Some(why) = record.as_ref().ok().and_then(super::plausible::implausible) {
        out.implausible += 1;
        out.implausible_why.get_or_insert(why);
        return;
    }
    match record {
        Ok(Record::Bench(r)) => out.bench.push(*r),
        Ok(Record::Request(r)) => out.requests.push(*r),
        Ok(Record::CellFailed(f)) => out.failures.push(f),
        Ok(Record::Judgement(j)) => out.judgements.push(*j),
        Ok(Record::Profile(p)) => out.profiles.push(*p),
        Err(_) if looks_like_one => out.unreadable += 1,
        // Other JSON (a saved bandwidth probe, a summary) is not a record.
        Err(_) => out.other += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_file_is_told_from_a_model_and_from_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let results = dir.path().join("sweep.jsonl");
        std::fs::write(&results, sweep).unwrap();
        assert!(holds_records(&results));
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"GGUF\x03\x00\x00\x00{\"schema\":1}\n").unwrap();
        assert!(!holds_records(&model));
        let notes = dir.path().join("notes.jsonl");
        std::fs::write(&notes, "not json\n[1, 2]\n").unwrap();
        assert!(!holds_records(&notes));
        assert!(!holds_records(&dir.path().join("missing.jsonl")));
        assert!(!holds_records(dir.path()));
    }

    #[test]
    fn a_line_cut_inside_a_character_is_left_out_and_the_file_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let whole = load_text(dir.path(), "whole.jsonl", sweep.as_bytes());
        let mut torn = sweep.as_bytes().to_vec();
        torn.extend_from_slice(b"{\"schema\":1,\"response\":\"caf\xc3");
        let other = tempfile::tempdir().unwrap();
        let r = load_text(other.path(), "torn.jsonl", &torn);
        assert_eq!(r.requests.len(), whole.requests.len());
        assert!(!r.requests.is_empty());
        assert_eq!((whole.unreadable, r.unreadable), (0, 1));
    }

    fn load_text(dir: &Path, name: &str, bytes: &[u8]) -> Records {
        std::fs::write(dir.join(name), bytes).unwrap();
        load(dir).unwrap()
    }

    #[test]
    fn records_with_figures_that_cannot_be_true_are_left_out_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let mut lines: Vec<serde_json::Value> = sweep
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        lines[1]["decode_tps"] = (-5.0).into();
        lines[2]["decode_tps"] = 1e300.into();
        lines[3]["ttft_ms"] = (-12.5).into();
        lines[4]["time"] = "\u{1b}[2J yesterday".into();
        let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
        let path = dir.path().join("sweep.jsonl");
        std::fs::write(&path, text).unwrap();
        let r = load(&path).unwrap();
        assert_eq!(r.requests.len(), lines.len() - 4);
        assert_eq!((r.implausible, r.unreadable), (4, 0));
        assert_eq!(
            r.implausible_why.as_deref(),
            Some("decode_tps -5 is outside 0 to 1e8 tok/s")
        );
        let mut one = Records::default();
        let value = |time: &str| {
            let mut v = lines[4].clone();
            v["time"] = time.into();
            v
        };
        add(value("\u{1b}[2J yesterday"), &mut one, &mut BTreeSet::new());
        assert_eq!(
            one.implausible_why.as_deref(),
            Some("time \"\\u{1b}[2J yesterday\" is not an RFC 3339 time")
        );
        add(
            value("2026-11-27T07:00:00.5+01:00"),
            &mut one,
            &mut BTreeSet::new(),
        );
        add(value(""), &mut one, &mut BTreeSet::new());
        assert_eq!((one.requests.len(), one.implausible), (2, 1));
        // A byte-order mark before the first line is not part of it.
        let bom = dir.path().join("bom.jsonl");
        std::fs::write(&bom, format!("\u{feff}{sweep}")).unwrap();
        let r = load(&bom).unwrap();
        assert_eq!((r.requests.len(), r.unreadable), (sweep.lines().count(), 0));
        // The records as written read whole.
        let all = load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data"
        )))
        .unwrap();
        assert_eq!((all.implausible, all.implausible_why), (0, None));
    }

    /// Of a load level whose first run lost records and ran again, the readers get the
    /// complete run alone; records that do not name their run read as before.
    #[test]
    fn a_level_run_again_after_losing_records_is_read_from_its_complete_run() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let first: serde_json::Value = serde_json::from_str(sweep.lines().next().unwrap()).unwrap();
        let line = |run: Option<&str>, seq: usize, concurrency: u32| {
            let mut v = first.clone();
            v["traffic"] = serde_json::json!({
                "shape": "closed", "concurrency": concurrency, "level_requests": 4, "seq": seq,
                "arrival_ms": 0.0, "queue_ms": 0.0, "concurrent": 0, "level_wall_ms": 1.0,
            });
            if let Some(run) = run {
                v["traffic"]["level_run"] = run.into();
                v["traffic"]["level_records"] = 4.into();
            }
            format!("{v}\n")
        };
        // Three of a run's four records, then the level's complete run, then a level of
        // records that do not name their run.
        let text: String = (0..3)
            .map(|seq| line(Some("a"), seq, 2))
            .chain((0..4).map(|seq| line(Some("b"), seq, 2)))
            .chain((0..3).map(|seq| line(None, seq, 4)))
            .collect();
        let path = dir.path().join("sweep.jsonl");
        std::fs::write(&path, &text).unwrap();
        let r = load(&path).unwrap();
        assert!(r.incomplete_levels.is_empty(), "{:?}", r.incomplete_levels);
        let runs: Vec<Option<&str>> = r
            .requests
            .iter()
            .map(|q| q.traffic.as_ref().unwrap().level_run.as_deref())
            .collect();
        assert_eq!(
            runs,
            [Some("b"); 4]
                .into_iter()
                .chain([None; 3])
                .collect::<Vec<_>>()
        );
        // A level with no complete run is read from its last run, and named.
        std::fs::write(
            &path,
            (0..3)
                .map(|seq| line(Some("a"), seq, 2))
                .chain((0..2).map(|seq| line(Some("c"), seq, 2)))
                .collect::<String>(),
        )
        .unwrap();
        let r = load(&path).unwrap();
        assert_eq!(r.requests.len(), 2);
        let q = &r.requests[0].cell;
        let want = format!("{} {}/{} c=2: 2 of 4 records", q.backend, q.model, q.quant);
        assert_eq!(r.incomplete_levels, [want]);
    }

    /// The span runs from the earliest time to the latest, compared across UTC offsets, each
    /// shown as written.
    #[test]
    fn the_time_span_compares_times_across_offsets() {
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let first: Value = serde_json::from_str(sweep.lines().next().unwrap()).unwrap();
        let mut r = Records::default();
        assert_eq!(r.time_span(), None);
        let times = [
            "2026-01-01T08:00:00+01:00",
            "2026-01-01T10:00:00+05:00",
            "",
            "2026-01-01T06:00:00Z",
        ];
        for (i, t) in times.into_iter().enumerate() {
            let mut v = first.clone();
            v["time"] = t.into();
            v["prompt_id"] = i.to_string().into();
            add(v, &mut r, &mut BTreeSet::new());
        }
        assert_eq!(r.requests.len(), times.len());
        assert_eq!(
            r.time_span(),
            Some((times[1].to_string(), times[0].to_string()))
        );
    }

    /// The same record written with its keys in another order, also within its objects, is a
    /// duplicate.
    #[test]
    fn a_record_with_its_keys_in_another_order_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let line = sweep.lines().next().unwrap();
        let reversed = |v: Value| match v {
            Value::Object(m) => Value::Object(m.into_iter().rev().collect()),
            v => v,
        };
        let mut reordered = reversed(serde_json::from_str(line).unwrap());
        reordered["info"] = reversed(reordered["info"].take());
        let reordered = reordered.to_string();
        assert_ne!(reordered, line);
        let path = dir.path().join("sweep.jsonl");
        std::fs::write(&path, format!("{line}\n{reordered}\n")).unwrap();
        let r = load(&path).unwrap();
        assert_eq!((r.requests.len(), r.duplicates), (1, 1));
    }

    /// A record whose whole numbers another tool rewrote (`91.0` as `91`) is a duplicate; one
    /// whose figure differs is not.
    #[test]
    fn a_record_with_its_whole_numbers_written_as_integers_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let line = sweep.lines().next().unwrap();
        let mut v: Value = serde_json::from_str(line).unwrap();
        v["ttft_ms"] = serde_json::json!(91.0);
        let mut rewritten = v.clone();
        rewritten["ttft_ms"] = serde_json::json!(91);
        let mut other = v.clone();
        other["ttft_ms"] = serde_json::json!(91.5);
        let path = dir.path().join("sweep.jsonl");
        std::fs::write(&path, format!("{v}\n{rewritten}\n{other}\n")).unwrap();
        let r = load(&path).unwrap();
        assert_eq!((r.requests.len(), r.duplicates), (2, 1));
    }

    /// A level in several files is one level: of two sweeps' complete runs the latest is
    /// read, whatever the files are called; a damaged copy beside a whole one loses nothing.
    #[test]
    fn a_level_in_several_files_is_read_from_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let first: serde_json::Value = serde_json::from_str(sweep.lines().next().unwrap()).unwrap();
        let line = |run: &str, seq: usize, time: &str| {
            let mut v = first.clone();
            v["time"] = time.into();
            v["traffic"] = serde_json::json!({
                "shape": "closed", "concurrency": 2, "level_requests": 4, "seq": seq,
                "arrival_ms": seq as f64 * 10.0, "queue_ms": 0.0, "concurrent": 0,
                "level_wall_ms": 1.0, "level_run": run, "level_records": 4,
            });
            format!("{v}\n")
        };
        let run = |name: &str, time: &str, seqs: &[usize]| -> String {
            seqs.iter().map(|&s| line(name, s, time)).collect()
        };
        let runs_read = |files: &[(&str, String)]| {
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            for (name, text) in files {
                std::fs::write(sub.path().join(name), text).unwrap();
            }
            let r = load(sub.path()).unwrap();
            let names: BTreeSet<String> = (r.requests.iter())
                .map(|q| q.traffic.as_ref().unwrap().level_run.clone().unwrap())
                .collect();
            (r.requests.len(), names, r.incomplete_levels)
        };
        let (early, late) = ("2026-11-01T10:00:00Z", "2026-11-02T10:00:00+05:00");
        for (a, b) in [("a.jsonl", "b.jsonl"), ("b.jsonl", "a.jsonl")] {
            let (n, names, lost) = runs_read(&[
                (a, run("old", early, &[0, 1, 2, 3])),
                (b, run("new", late, &[0, 1, 2, 3])),
            ]);
            assert_eq!((n, names.len(), lost.len()), (4, 1, 0));
            assert!(names.contains("new"), "{names:?}");
        }
        // A copy that lost a record beside the whole file: the level is whole.
        let (n, _, lost) = runs_read(&[
            ("a.jsonl", run("x", early, &[0, 1, 3])),
            ("b.jsonl", run("x", early, &[0, 1, 2, 3])),
        ]);
        assert_eq!((n, lost.len()), (4, 0), "{lost:?}");
        // Two copies that each lost another record hold the level whole between them.
        let (n, _, lost) = runs_read(&[
            ("a.jsonl", run("x", early, &[0, 1, 3])),
            ("b.jsonl", run("x", early, &[0, 1, 2])),
        ]);
        assert_eq!((n, lost.len()), (4, 0), "{lost:?}");
        // Both lost the same record: one level, named once.
        let (n, _, lost) = runs_read(&[
            ("a.jsonl", run("x", early, &[0, 1, 3])),
            ("b.jsonl", run("x", early, &[0, 1, 3])),
        ]);
        assert_eq!((n, lost.len()), (3, 1), "{lost:?}");
    }

    #[test]
    fn reads_nested_files_in_order_and_skips_duplicates_and_junk() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b/c");
        std::fs::create_dir_all(&sub).unwrap();
        let failure = r#"{"kind":"cell_failed","schema":1,"time":"2026-11-27T08:00:00Z","runner_version":"v","cell":{"model":"m","quant":"q8_0"},"reason":"r"}"#;
        std::fs::write(sub.join("one.jsonl"), format!("{failure}\nnot json\n")).unwrap();
        std::fs::write(dir.path().join("a.jsonl"), format!("{failure}\n")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), failure).unwrap();
        std::fs::write(dir.path().join("probe.json"), r#"{"machine":{}}"#).unwrap();
        let r = load(dir.path()).unwrap();
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.duplicates, 1);
        assert_eq!((r.unreadable, r.other), (1, 1));
        assert_eq!(r.files, vec!["a.jsonl".to_string()]);
        // One file reads on its own; a missing path is a one-line error.
        let one = load(&dir.path().join("a.jsonl")).unwrap();
        assert_eq!(one.failures.len(), 1);
        let e = load(&dir.path().join("none")).unwrap_err().to_string();
        assert!(e.ends_with("none: no such file or directory"), "{e}");
    }
}
