//! Tables: every table runner prints is a list of [`Column`]s over a row type, rendered as
//! aligned text or as Markdown; and the bench's human view, a few columns per record.

use super::MIB;
use crate::measure::stats::Summary;
use crate::record::BenchRecord;

/// One column of a table over rows of `T`: its header, whether it holds numbers (aligned
/// right), and how a row's cell reads.
pub struct Column<T> {
    pub header: &'static str,
    pub numeric: bool,
    pub value: fn(&T) -> String,
}

impl<T> Clone for Column<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Column<T> {}

impl<T> Column<T> {
    /// A column of text, aligned left.
    pub const fn text(header: &'static str, value: fn(&T) -> String) -> Column<T> {
        Column {
            header,
            numeric: false,
            value,
        }
    }

    /// A column of numbers, aligned right.
    pub const fn number(header: &'static str, value: fn(&T) -> String) -> Column<T> {
        Column {
            header,
            numeric: true,
            value,
        }
    }
}

/// The cells of `rows` under `columns`.
pub fn grid<'a, T: 'a>(columns: &[Column<T>], rows: impl IntoIterator<Item = &'a T>) -> Grid {
    Grid {
        headers: columns.iter().map(|c| c.header).collect(),
        numeric: columns.iter().map(|c| c.numeric).collect(),
        rows: rows
            .into_iter()
            .map(|r| columns.iter().map(|c| (c.value)(r)).collect())
            .collect(),
    }
}

/// `rows` under `columns` as aligned text.
pub fn aligned<'a, T: 'a>(columns: &[Column<T>], rows: impl IntoIterator<Item = &'a T>) -> String {
    grid(columns, rows).aligned()
}

/// `rows` under `columns` as a Markdown table.
pub fn markdown<'a, T: 'a>(columns: &[Column<T>], rows: impl IntoIterator<Item = &'a T>) -> String {
    grid(columns, rows).markdown()
}

/// The median ± the standard deviation; the median alone from one repetition, whose spread
/// was not measured.
fn rate(s: &Option<Summary>) -> String {
    match s {
        Some(s) if s.n < 2 => format!("{:.2}", s.median),
        Some(s) => format!("{:.2} ± {:.2}", s.median, s.sd),
        None => "-".into(),
    }
}

/// A number with `digits` decimals, or `-`.
pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The text, or `-` when there is none or it is empty.
pub fn or_dash<'a>(s: impl Into<Option<&'a str>>) -> String {
    s.into()
        .filter(|s| !s.is_empty())
        .unwrap_or("-")
        .to_string()
}

/// A share as a percentage, e.g. `0.456` → `45.6`.
pub fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.1}", s * 100.0))
}

/// A share as a percentage with its unit, e.g. `0.456` → `45.6 %`.
pub fn pct(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// Bandwidth used as percentages of the measured and the published peak, `measured/published`
/// (the `BW % meas/spec` columns).
pub fn percent_pair(measured: Option<f64>, published: Option<f64>) -> String {
    format!("{}/{}", percent(measured), percent(published))
}

fn mib(bytes: u64) -> String {
    if bytes == 0 {
        "-".into()
    } else {
        format!("{:.1}", bytes as f64 / MIB)
    }
}

fn params(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n => format!("{:.1} M", n as f64 / 1e6),
    }
}

/// A bench record's engine settings other than its threads, as the `settings` column shows
/// them: `fa:auto kv:f16/f16 b512/512 ctx4096 ngl:999`, with `no-mmap` when mmap was off.
pub fn bench_settings(r: &BenchRecord) -> String {
    let e = &r.engine;
    format!(
        "fa:{} kv:{}/{} b{}/{} ctx{} ngl:{}{}",
        e.flash_attn,
        e.type_k,
        e.type_v,
        e.n_batch,
        e.n_ubatch,
        e.n_ctx,
        e.n_gpu_layers,
        if e.use_mmap { "" } else { " no-mmap" }
    )
}

/// A bench record's columns.
pub const BENCH: &[Column<BenchRecord>] = &[
    Column::text("model", |r| {
        let stem = r.model.file_name.trim_end_matches(".gguf");
        match &r.model.synthetic {
            Some(s) => s.label(stem),
            None => stem.to_string(),
        }
    }),
    Column::text("quant", |r| {
        r.model.file_type.clone().unwrap_or_else(|| "?".into())
    }),
    Column::number("weights MiB", |r| mib(r.memory.model_bytes)),
    Column::number("params", |r| params(r.model.n_params)),
    Column::number("threads", |r| r.engine.threads.to_string()),
    Column::text("test", |r| {
        format!(
            "{}{}",
            r.test.name,
            if r.load.busy { " (busy!)" } else { "" }
        )
    }),
    Column::number("prompt t/s", |r| rate(&r.results.prompt_tps)),
    Column::number("gen t/s", |r| rate(&r.results.gen_tps)),
    Column::number("TTFT ms", |r| {
        opt(r.results.ttft_ms.as_ref().map(|s| s.median), 1)
    }),
    Column::number("ITL p50 ms", |r| {
        opt(r.results.itl_ms.as_ref().map(|h| h.p50_ms), 1)
    }),
    Column::number("ITL p99 ms", |r| {
        opt(r.results.itl_ms.as_ref().map(|h| h.p99_ms), 1)
    }),
    Column::number("e2e ms", |r| {
        opt(r.results.e2e_ms.as_ref().map(|s| s.median), 1)
    }),
    Column::number("GB/s", |r| {
        opt(r.bandwidth.as_ref().map(|b| b.achieved_gbps), 2)
    }),
    Column::number("BW % meas", |r| {
        percent(r.bandwidth.as_ref().and_then(|b| b.utilisation_measured))
    }),
    Column::number("BW % spec", |r| {
        percent(r.bandwidth.as_ref().and_then(|b| b.utilisation_published))
    }),
    Column::number("KV MiB", |r| mib(r.memory.kv_cache_bytes)),
    Column::number("compute MiB", |r| mib(r.memory.compute_buffer_bytes)),
    Column::number("peak RSS MiB", |r| mib(r.memory.peak_rss_bytes)),
];

/// `v` padded with spaces to `width` characters, on the left when `right` aligns it right.
/// Padded by hand: a formatting width is limited to 65,535 and a cell may be longer.
fn pad(v: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(v.chars().count()));
    if right {
        fill + v
    } else {
        v.to_string() + &fill
    }
}

/// `s` as Markdown that stays in its table cell and on its line (a name from a record in a
/// cell or a sentence): a pipe and a backslash are escaped (`\|`, `\\`: a backslash in a name
/// neither hides nor escapes what follows it), `<` is written `&lt;` (no HTML tag from a record
/// reaches a page that renders the Markdown), and a control character (a newline, a NUL, a tab),
/// which would end or break the row, is written as its Rust escape
/// (`\n`, `\0`, `\u{1b}`).
pub fn markdown_cell(s: &str) -> String {
    escaped(s, true)
}

/// A name from a records file as one line of plain text (control characters escaped).
pub fn text_cell(s: &str) -> String {
    escaped(s, false)
}

/// `s` with its control characters escaped (`\n`, `\u{1b}`), and with `pipe` (Markdown), `|`
/// as `\|`, `\` as `\\` and `<` as `&lt;`: a cell never breaks its row.
fn escaped(s: &str, pipe: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' if pipe => out.push_str("\\|"),
            '\\' if pipe => out.push_str("\\\\"),
            '<' if pipe => out.push_str("&lt;"),
            c if c.is_control() => out.extend(c.escape_debug()),
            c => out.push(c),
        }
    }
    out
}

/// Rows of text cells under headers; numeric columns align right. Built from columns
/// ([`grid`]); tables that append a note or rows of another kind use it directly.
pub struct Grid {
    pub headers: Vec<&'static str>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    /// Aligned columns separated by two spaces, with a rule under the headers (control
    /// characters in cells escaped, so that each row stays one line).
    pub fn aligned(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| escaped(c, false)).collect())
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |vals: &Vec<String>| -> String {
            let parts: Vec<String> = vals
                .iter()
                .zip(&self.numeric)
                .zip(&widths)
                .map(|((v, &num), &w)| pad(v, w, num))
                .collect();
            parts.join("  ").trim_end().to_string() + "\n"
        };
        let headers = self.headers.iter().map(|h| h.to_string()).collect();
        let rule = widths.iter().map(|&w| "-".repeat(w)).collect();
        [headers, rule].iter().chain(&rows).map(line).collect()
    }

    /// A Markdown table (cells made safe by [`markdown_cell`]).
    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.headers.join(" | "));
        let rule: Vec<&str> = self
            .numeric
            .iter()
            .map(|&n| if n { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            let row: Vec<String> = row.iter().map(|c| markdown_cell(c)).collect();
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_keep_their_row_whole() {
        let g = Grid {
            headers: vec!["machine", "n"],
            numeric: vec![false, true],
            rows: vec![vec![
                "Evil\nCPU\0 | x\r\t\u{1b}[31m\u{85}".into(),
                "1".into(),
            ]],
        };
        let md = g.markdown();
        assert_eq!(md.lines().count(), 3, "{md}");
        assert_eq!(
            md.lines().nth(2).unwrap(),
            "| Evil\\nCPU\\0 \\| x\\r\\t\\u{1b}[31m\\u{85} | 1 |"
        );
        assert_eq!(markdown_cell("Apple M4 Pro"), "Apple M4 Pro");
        assert_eq!(
            markdown_cell("x<img src=x onerror=alert(1)>"),
            "x&lt;img src=x onerror=alert(1)>"
        );
        assert_eq!(text_cell("a<b"), "a<b");
        // A backslash before a pipe would otherwise swallow the pipe's escape.
        assert_eq!(markdown_cell("a\\|b\\*"), "a\\\\\\|b\\\\*");
        assert_eq!(text_cell("a\\b"), "a\\b");
    }

    #[test]
    fn text_cells_keep_their_row_whole() {
        let g = Grid {
            headers: vec!["model", "n"],
            numeric: vec![false, true],
            rows: vec![
                vec!["Evil\nmodel\t| x\u{1b}[31m".into(), "1".into()],
                vec!["plain".into(), "2".into()],
            ],
        };
        let text = g.aligned();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert_eq!(
            text.lines().nth(2).unwrap(),
            "Evil\\nmodel\\t| x\\u{1b}[31m  1"
        );
        assert!(text.lines().nth(3).unwrap().starts_with("plain "));
    }

    #[test]
    fn cells_of_any_length_are_aligned() {
        let long = "m".repeat(70_000);
        let g = Grid {
            headers: vec!["model", "n"],
            numeric: vec![false, true],
            rows: vec![
                vec![long.clone(), "1".into()],
                vec!["é".into(), "22".into()],
            ],
        };
        let text = g.aligned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("model{}   n", " ".repeat(69_995)));
        assert_eq!(lines[2], format!("{long}   1"));
        assert_eq!(lines[3], format!("é{}  22", " ".repeat(69_999)));
    }
}

#[cfg(test)]
mod bench_table_tests {
    use crate::record::BenchRecord;
    use crate::report::Format;

    fn fixture() -> BenchRecord {
        let text = include_str!("../../tests/data/records/bench-smollm2.json");
        let mut r: Vec<BenchRecord> = serde_json::from_str(text).unwrap();
        r.remove(0)
    }

    #[test]
    fn rows_of_other_engine_settings_name_them_and_one_repetition_has_no_spread() {
        let one = fixture();
        let table = Format::Table.render(std::slice::from_ref(&one)).unwrap();
        assert!(!table.contains("settings"), "{table}");
        assert!(table.contains(" ± "), "{table}");
        let mut other = one.clone();
        other.engine.flash_attn = "off".parse().unwrap();
        let table = Format::Table.render(&[one.clone(), other]).unwrap();
        let header = table.lines().next().unwrap();
        assert!(header.contains("threads  settings"), "{table}");
        assert!(table.contains("fa:off kv:"), "{table}");
        // Another test, in the context and batch of its own size, needs no such column.
        let mut longer = one.clone();
        longer.test.name = "pp512+tg128".into();
        (longer.engine.n_ctx, longer.engine.n_batch) = (1024, 512);
        let table = Format::Table.render(&[one.clone(), longer]).unwrap();
        assert!(!table.contains("settings"), "{table}");
        let mut single = one;
        for s in [&mut single.results.prompt_tps, &mut single.results.gen_tps] {
            if let Some(s) = s.as_mut() {
                (s.n, s.sd) = (1, 0.0);
            }
        }
        let table = Format::Table.render(&[single]).unwrap();
        assert!(!table.contains(" ± "), "{table}");
    }
}
