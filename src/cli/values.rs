//! Parsing flag values: counts, shares and percentages, and the closed sets of the lower
//! layers (flash attention, KV types, output formats, routers) as clap value enums.

use crate::engine::{FlashAttn, KvType, MAX_CTX, MAX_THREADS};
use crate::hw::stream::MAX_PASSES;
use crate::measure::load::MAX_IN_FLIGHT;
use crate::moe::Router;
use crate::report::{Format, ListFormat};
use clap::builder::PossibleValue;
use clap::ValueEnum;

/// A whole number from `least` to `max` (`why`: what the limit is, after it). A negative
/// number, or one too large for any integer type, is named as such, not as something other
/// than a number.
pub(crate) fn bounded(s: &str, least: u32, max: u32, why: &str) -> Result<u32, String> {
    let n = whole(s, least.into(), max.into(), why)?;
    Ok(u32::try_from(n).unwrap_or(max))
}

/// [`bounded`] of any whole number up to `u64::MAX`.
fn whole(s: &str, least: u64, max: u64, why: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a whole number, got '{s}'"));
    }
    // None: too large for any integer type.
    let n = digits.parse::<u64>().ok();
    if (s.starts_with('-') && n != Some(0)) || n.is_some_and(|n| n < least) {
        return Err(match least {
            0 => format!("must be 0 or more, got {s}"),
            _ => format!("must be at least {least}, got {s}"),
        });
    }
    match n.filter(|&n| n <= max) {
        Some(n) => Ok(n),
        None => Err(format!("must be at most {max}{why}, got {s}")),
    }
}

/// A whole number from `least` to `max`, every value out of that range (a negative one, one
/// past every integer type) refused as `must be LEAST to MAX{why}, got S`.
fn within(s: &str, least: u64, max: u64, why: &str) -> Result<u64, String> {
    whole(s, least, max, why).map_err(|e| match e.starts_with("expected") {
        true => e,
        false => format!("must be {least} to {max}{why}, got {}", s.trim()),
    })
}

/// [`within`] of a number that fits a `u32`.
fn within_u32(s: &str, least: u32, max: u32, why: &str) -> Result<u32, String> {
    let n = within(s, least.into(), max.into(), why)?;
    Ok(u32::try_from(n).unwrap_or(max))
}

/// The most tokens `runner guide` assumes a context or a prompt holds.
pub const MAX_GUIDE_TOKENS: u64 = 10_000_000;

/// A context or prompt length `runner guide` assumes: 1 to [`MAX_GUIDE_TOKENS`].
pub fn parse_guide_tokens(s: &str) -> Result<u64, String> {
    within(s, 1, MAX_GUIDE_TOKENS, "")
}

/// A count that may be zero: whole, non-negative.
pub fn parse_count(s: &str) -> Result<u32, String> {
    bounded(s, 0, u32::MAX, "")
}

/// A count whose lower bound is checked after parsing, with the other flags or the model (whose
/// message says so for 0); a negative number is refused here as under that bound (`least`: how
/// it reads), not as under 0.
fn count_at_least(s: &str, least: &str) -> Result<u32, String> {
    parse_count(s).map_err(|e| match e.starts_with("must be 0 or more") {
        true => format!("must be at least {least}, got {}", s.trim()),
        false => e,
    })
}

/// `moe upcycle --experts`: at least 2 (the upper bound is checked with `--used`).
pub fn parse_upcycle_experts(s: &str) -> Result<u32, String> {
    count_at_least(s, "2")
}

/// `moe upcycle --used`, `models synth --layers`: at least 1 (the upper bound is checked with
/// `--experts` or the model's layers).
pub fn parse_at_least_one(s: &str) -> Result<u32, String> {
    count_at_least(s, "1")
}

/// `models synth --experts`: at least the experts the model uses per token, checked with the
/// model.
pub fn parse_synth_experts(s: &str) -> Result<u32, String> {
    count_at_least(s, "the experts the model uses per token")
}

/// A count that must be at least 1.
pub fn parse_positive(s: &str) -> Result<u32, String> {
    bounded(s, 1, u32::MAX, "")
}

/// What bounds a token count.
const TOKENS_WHY: &str = " (the largest context llama.cpp holds)";

/// A context size in tokens: 1 to llama.cpp's largest ([`MAX_CTX`]).
pub fn parse_ctx(s: &str) -> Result<u32, String> {
    within_u32(s, 1, MAX_CTX, TOKENS_WHY)
}

/// Requests in flight at most in an open-loop level (`--slots`): 1 to [`MAX_IN_FLIGHT`].
pub fn parse_slots(s: &str) -> Result<u32, String> {
    within_u32(s, 1, MAX_IN_FLIGHT, "")
}

/// A seed: any whole number from 0 to `u64::MAX`.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    within(s, 0, u64::MAX, "")
}

/// A token count that may be zero (a prompt, a generation, a depth), at most llama.cpp's
/// largest context ([`MAX_CTX`]): more tokens than any context holds cannot be evaluated.
pub fn parse_tokens(s: &str) -> Result<u32, String> {
    bounded(s, 0, MAX_CTX, TOKENS_WHY)
}

/// A token count of at least 1 and at most llama.cpp's largest context ([`MAX_CTX`]).
pub fn parse_positive_tokens(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_CTX, TOKENS_WHY)
}

/// A thread count: at least 1 and at most llama.cpp's limit ([`MAX_THREADS`]). `runner hw`'s
/// probe threads take the same limit: bandwidth read by more threads than llama.cpp runs is
/// none a decode can reach.
pub fn parse_threads(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_THREADS, " (llama.cpp's thread limit)")
}

/// Timed passes of `runner hw`: at least 1 and at most [`MAX_PASSES`].
pub fn parse_passes(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_PASSES, "")
}

/// Measured repetitions of a bench test: at least 1 and at most 10,000.
pub fn parse_repetitions(s: &str) -> Result<u32, String> {
    bounded(s, 1, 10_000, "")
}

/// `n` when it is at most `max`; else why not (`why`: what the limit is, after it).
pub fn at_most(n: u32, max: u32, why: &str) -> Result<u32, String> {
    match n > max {
        true => Err(format!("must be at most {max}{why}, got {n}")),
        false => Ok(n),
    }
}

/// A number that `ok` accepts; else "expected `what`".
fn parse_number(s: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if ok(v) => Ok(v),
        _ => Err(format!("expected {what}, got '{s}'")),
    }
}

/// A rate in tokens per second: above 0 and below a million.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    parse_number(
        s,
        |v| v > 0.0 && v < 1e6,
        "tokens per second above 0 and below 1000000",
    )
}

/// A percentage such as `5%` or `2.5`, as a fraction (0.05, 0.025).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("expected a percentage such as 5%, got {s:?}"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("must be from 0% to under 100%, got {s}"));
    }
    Ok(v / 100.0)
}

/// A number of seconds: finite, 0 or more (each flag checks its own range after).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    parse_number(s, ok, "a number of seconds")
}

/// A number of GiB: finite, more than 0.
pub fn parse_gib(s: &str) -> Result<f64, String> {
    parse_number(
        s,
        |v| v.is_finite() && v > 0.0,
        "a size in GiB, more than 0",
    )
}

/// The other load, in busy cores, above which the machine counts as busy: 0 or more.
pub fn check_busy_threshold(cores: f64) -> Result<(), String> {
    match cores.is_finite() && cores >= 0.0 {
        true => Ok(()),
        false => Err("--busy-threshold must be 0 or more".into()),
    }
}

/// `-o FILE` must not name a directory, nor a model (which the run may read), nor a place
/// that cannot be written ([`check_output_writable`]): refused before a run, not after it.
pub fn check_output_file(path: Option<&std::path::Path>) -> Result<(), String> {
    match path {
        Some(p) if p.is_dir() => Err(format!("-o {}: is a directory; name a file", p.display())),
        Some(p) if crate::gguf::is_model_file(p) => Err(format!(
            "-o {}: is a model (a GGUF file); name another file",
            p.display()
        )),
        _ => check_output_writable(path),
    }
}

/// `-o FILE` must be a place a file can be written (not under a regular file): refused
/// before a run or a read of records, not after it.
pub fn check_output_writable(path: Option<&std::path::Path>) -> Result<(), String> {
    match path {
        Some(p) => crate::util::fs::check_writable(p)
            .map_err(|e| format!("-o {}: cannot be written: {e}", p.display())),
        None => Ok(()),
    }
}

/// A directory flag (`--results DIR`, `--out DIR`, `--cache-dir DIR`) must not name a file, nor
/// lie under one: refused before anything is read or written, as `--results FILE: not a
/// directory`. A directory not there yet is made later; a link that leads nowhere (under which
/// nothing can be made) or loops is refused with what the system says of it.
pub fn check_dir(flag: &str, dir: &std::path::Path) -> Result<(), String> {
    match crate::util::fs::nearest_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(format!("{flag} {}: not a directory", dir.display()))
        }
        Err(e) => Err(format!("{flag} {e}")),
        Ok(_) => Ok(()),
    }
}

/// Implements `ValueEnum` for a closed set of a lower layer (a `named_enum!`).
macro_rules! value_enum {
    ($t:ty) => {
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                <$t>::ALL
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.as_str()))
            }
        }
    };
}

value_enum!(FlashAttn);
value_enum!(KvType);
value_enum!(Format);
value_enum!(Router);
value_enum!(ListFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_say_why() {
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_count("-1").unwrap_err().contains("0 or more"));
        // A negative count or one past every integer type is named as such.
        assert_eq!(parse_passes("-1"), Err("must be at least 1, got -1".into()));
        assert_eq!(
            parse_positive("99999999999999"),
            Err("must be at most 4294967295, got 99999999999999".into())
        );
        let huge = "9".repeat(40);
        assert_eq!(
            parse_passes(&huge),
            Err(format!("must be at most 1000, got {huge}"))
        );
        assert_eq!(
            parse_ctx("-3"),
            Err("must be 1 to 2147483392 (the largest context llama.cpp holds), got -3".into())
        );
        assert_eq!((parse_count("+5"), parse_count(" 7 ")), (Ok(5), Ok(7)));
        for bad in ["1.5", "", "-", "1e3", "0x10"] {
            assert!(parse_count(bad)
                .unwrap_err()
                .starts_with("expected a whole number"));
        }
        assert!(parse_positive("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_tokens("0"), Ok(0));
        assert_eq!(parse_tokens("2147483392"), Ok(MAX_CTX));
        assert!(parse_tokens("2147483393")
            .unwrap_err()
            .contains("at most 2147483392 (the largest context llama.cpp holds)"));
        assert!(parse_positive_tokens("0")
            .unwrap_err()
            .contains("at least 1"));
        assert_eq!(parse_threads("512"), Ok(512));
        assert!(parse_threads("0").unwrap_err().contains("at least 1"));
        assert!(parse_threads("100000").unwrap_err().contains("at most 512"));
        assert_eq!(parse_passes("1000"), Ok(1000));
        assert!(parse_passes("4294967295")
            .unwrap_err()
            .contains("at most 1000"));
        // Every --slots out of range says the range, however far out.
        assert_eq!(parse_slots("256"), Ok(256));
        for bad in ["0", "-1", "257", "4294967296", "99999999999", huge.as_str()] {
            assert_eq!(
                parse_slots(bad),
                Err(format!("must be 1 to 256, got {bad}"))
            );
        }
        assert_eq!(parse_seed("0"), Ok(0));
        assert_eq!(parse_seed("18446744073709551615"), Ok(u64::MAX));
        for bad in ["-1", "18446744073709551616", huge.as_str()] {
            assert_eq!(
                parse_seed(bad),
                Err(format!("must be 0 to 18446744073709551615, got {bad}"))
            );
        }
        assert_eq!(
            parse_seed("x"),
            Err("expected a whole number, got 'x'".into())
        );
        assert_eq!(parse_percent("5%"), Ok(0.05));
        assert!(parse_percent("100").is_err());
        for bad in ["nan", "inf", "-1", "x"] {
            assert!(check_busy_threshold(bad.parse().unwrap_or(f64::NAN)).is_err());
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert!(parse_gib("0").is_err());
        assert_eq!(parse_rate("999999"), Ok(999_999.0));
        for bad in ["1e6", "0", "-5", "nan"] {
            assert_eq!(
                parse_rate(bad).unwrap_err(),
                format!("expected tokens per second above 0 and below 1000000, got '{bad}'")
            );
        }
        for bad in ["-1", "0", "10000001"] {
            assert_eq!(
                parse_guide_tokens(bad),
                Err(format!("must be 1 to 10000000, got {bad}"))
            );
        }
        assert_eq!(parse_guide_tokens("10000000"), Ok(10_000_000));
        assert_eq!(
            parse_count("1.5"),
            Err("expected a whole number, got '1.5'".into())
        );
        assert_eq!(KvType::from_str("q8_0", true), Ok(KvType::Q8_0));
        assert_eq!(Format::from_str("md", true), Ok(Format::Md));
    }

    #[test]
    fn a_negative_count_is_told_the_bound_checked_later() {
        assert_eq!(
            parse_upcycle_experts("-1"),
            Err("must be at least 2, got -1".into())
        );
        assert_eq!(
            parse_at_least_one(" -3 "),
            Err("must be at least 1, got -3".into())
        );
        assert_eq!(
            parse_synth_experts("-1"),
            Err("must be at least the experts the model uses per token, got -1".into())
        );
        // 0 and 1 are left to the later check, whose message names the other flag or model.
        assert_eq!(
            (parse_upcycle_experts("0"), parse_at_least_one("0")),
            (Ok(0), Ok(0))
        );
        assert_eq!(parse_upcycle_experts("-0"), Ok(0));
        assert!(parse_at_least_one("1.5")
            .unwrap_err()
            .starts_with("expected a whole number"));
    }

    #[test]
    fn a_directory_flag_through_a_link_loop_or_under_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("loopA"), dir.path().join("loopB"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = check_dir("--results", &a).unwrap_err();
        assert!(
            e.starts_with(&format!("--results {}: ", a.display())),
            "{e}"
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = check_dir("--out", &file.join("sub")).unwrap_err();
        assert_eq!(
            e,
            format!("--out {}: not a directory", file.join("sub").display())
        );
        assert_eq!(check_dir("--results", &dir.path().join("new/runs")), Ok(()));
        let gone = dir.path().join("unmounted");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &gone).unwrap();
        let e = check_dir("--results", &gone.join("runs")).unwrap_err();
        assert!(
            e.starts_with(&format!("--results {}: ", gone.display())),
            "{e}"
        );
    }
}
