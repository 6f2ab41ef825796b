//! Small helpers every layer may use: atomic file writes, RFC 3339 times, a seeded generator.

/// Bad input (a flag, a file, a name): the command is refused with this one line and exit
/// code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub mod fs;
pub mod interrupt;
pub mod names;
pub mod quantile;
pub mod rng;
pub mod time;
pub mod toml_error;

/// Refuses a value of a list flag given twice (`--concurrency 1,1`, `-t 2,2`): one line,
/// `FLAG WRITTEN: given twice`, where `earlier` holds the values before `value` and `written`
/// is `value` as the user wrote it.
pub fn given_twice<T: PartialEq>(
    flag: &str,
    earlier: &[T],
    value: &T,
    written: &str,
) -> Result<(), String> {
    match earlier.contains(value) {
        true => Err(format!("{flag} {written}: given twice")),
        false => Ok(()),
    }
}

/// Refuses a list flag whose values hold one twice, naming the first repeat ([`given_twice`]).
pub fn no_repeats<T: PartialEq + std::fmt::Display>(
    flag: &str,
    values: &[T],
) -> Result<(), String> {
    for (i, value) in values.iter().enumerate() {
        given_twice(flag, &values[..i], value, &value.to_string())?;
    }
    Ok(())
}

/// A number as a person or runner may have written it: plain digits from `min_abs` to below
/// 10^9 (and 0, and what is not finite), else with an exponent (`1e20`, not twenty-one digits).
pub fn shown(v: f64, min_abs: f64) -> String {
    match v == 0.0 || (min_abs..1e9).contains(&v.abs()) || !v.is_finite() {
        true => v.to_string(),
        false => format!("{v:e}"),
    }
}

/// The real SmolLM2-135M model the model-dependent unit tests run on: `$RUNNER_TEST_MODEL`
/// (`scripts/test.sh` fetches it and sets it). A test that needs it fails when it is missing.
#[cfg(test)]
pub(crate) fn test_model() -> std::path::PathBuf {
    match std::env::var_os("RUNNER_TEST_MODEL") {
        Some(p) if !p.is_empty() && std::path::Path::new(&p).is_file() => p.into(),
        Some(p) => panic!(
            "RUNNER_TEST_MODEL={} is not a file: run scripts/test.sh, or `runner models fetch smollm2-135m` and set RUNNER_TEST_MODEL to its path",
            std::path::Path::new(&p).display()
        ),
        None => panic!(
            "RUNNER_TEST_MODEL is not set: run scripts/test.sh, or `runner models fetch smollm2-135m` and set RUNNER_TEST_MODEL to its path"
        ),
    }
}
