//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by
//! scripts/chromium.sh, which scripts/test.sh runs) renders the page from the fixed records,
//! with no console errors, every chart in the rendered DOM, and a screenshot that is a PNG
//! with a page drawn on it.

mod common;

use common::{runner, stderr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Chromium's path, or why this machine cannot have one.
fn chromium() -> Result<PathBuf, String> {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    let apt = Path::new("/usr/bin/apt-get").is_file();
    if cfg!(target_os = "linux") && apt {
        panic!("chromium is not installed but could be: run scripts/chromium.sh (scripts/test.sh does)");
    }
    Err(format!(
        "chromium is not installed and cannot be installed here ({}): the report's rendering test is skipped",
        if cfg!(target_os = "linux") { "no apt-get" } else { "not Debian/Linux" }
    ))
}

fn headless(chromium: &Path, profile: &Path, extra: &[&str], page: &Path) -> Output {
    let url = format!("file://{}", page.display());
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium starts")
}

/// Lines in which the page itself reported something: console messages or uncaught errors.
fn page_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("ERR_FILE_NOT_FOUND")
        })
        .collect()
}

#[test]
fn the_report_renders_in_chromium() {
    let chromium = match chromium() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let o = runner()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"))
        .args([
            "report",
            "--results",
            "records",
            "-o",
            page.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let dom = headless(&chromium, &dir.path().join("p1"), &["--dump-dom"], &page);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium --dump-dom failed: {log}");
    assert!(page_errors(&log).is_empty(), "{:?}", page_errors(&log));
    assert_eq!(
        html.matches("<svg").count(),
        8,
        "charts in the rendered DOM"
    );
    for id in [
        "ttft",
        "itl",
        "decode",
        "quality",
        "cost",
        "roofline",
        "calibration",
        "routing",
    ] {
        assert!(
            html.contains(&format!("<figure id=\"{id}\">")),
            "{id} missing"
        );
    }

    let shot = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    let o = headless(
        &chromium,
        &dir.path().join("p2"),
        &[&arg, "--window-size=1100,3000"],
        &page,
    );
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chromium --screenshot failed: {log}");
    assert!(page_errors(&log).is_empty(), "{:?}", page_errors(&log));
    let (w, h, ink, colours) = png_stats(&shot);
    assert_eq!((w, h), (1100, 3000));
    assert!(
        ink > 0.03,
        "the screenshot is almost blank: {:.2} % ink",
        ink * 100.0
    );
    assert!(
        colours >= 8,
        "only {colours} colours: the charts did not draw"
    );
}

/// Width, height, the share of pixels that are not white, and the number of distinct
/// colours (coarsened to 4 bits a channel) of a PNG file.
fn png_stats(path: &Path) -> (u32, u32, f64, usize) {
    let file = std::fs::File::open(path).expect("the screenshot exists");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let mut ink = 0usize;
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0usize;
    for p in pixels {
        n += 1;
        if p[..3].iter().any(|&c| c < 240) {
            ink += 1;
        }
        seen.insert((p[0] >> 4, p[1] >> 4, p[2] >> 4));
    }
    (
        info.width,
        info.height,
        ink as f64 / n.max(1) as f64,
        seen.len(),
    )
}
