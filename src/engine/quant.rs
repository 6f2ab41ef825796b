//! The quantization types runner can produce with llama.cpp, and parsing them from the command line.
//!
//! Every type here is one llama.cpp's quantize API makes from a model alone. Types that need an
//! importance matrix (`q2_k_s`, the `iq1_*`/`iq2_*` family, `iq3_xxs`, `iq3_xs`: llama.cpp's
//! `tensor_requires_imatrix` marks some of their tensors) are refused with that reason, as are
//! the types meant only for special models (ternary/1-bit-trained weights, Mixture-of-Experts).
//! `source` in a list stands for the model file as given, unquantized by runner.

/// A quantization llama.cpp can produce without an importance matrix.
#[derive(Debug)]
pub struct QuantType {
    /// Lower-case name, as typed on the command line: "q4_k_m".
    pub name: &'static str,
    /// llama.cpp's spelling: "Q4_K_M".
    pub display: &'static str,
    /// The `llama_ftype` value (`LLAMA_FTYPE_MOSTLY_*` in llama.h), also `general.file_type`.
    pub ftype: u32,
    /// Nominal bits per weight, for memory estimates: the block format's bits for single-type
    /// files (q4_0 = 4.5), llama.cpp's measured whole-file figure on Llama-3.1-8B for the
    /// mixtures (tools/quantize/README.md). Small models whose rows do not fit 256-blocks
    /// come out larger (their k-quant tensors fall back to 32-blocks).
    pub approx_bpw: f64,
}

/// Two types are the same when their `llama_ftype` is (each type in `ALL` has its own).
impl PartialEq for QuantType {
    fn eq(&self, other: &Self) -> bool {
        self.ftype == other.ftype
    }
}

impl Eq for QuantType {}

const fn qt(name: &'static str, display: &'static str, ftype: u32, approx_bpw: f64) -> QuantType {
    QuantType {
        name,
        display,
        ftype,
        approx_bpw,
    }
}

/// Every quantization type runner can produce, in a fixed order.
static ALL: [QuantType; 21] = [
    qt("q2_k", "Q2_K", 10, 3.16),
    qt("q3_k_s", "Q3_K_S", 11, 3.64),
    qt("q3_k_m", "Q3_K_M", 12, 4.00),
    qt("q3_k_l", "Q3_K_L", 13, 4.30),
    qt("q4_0", "Q4_0", 2, 4.5),
    qt("q4_1", "Q4_1", 3, 5.0),
    qt("q4_k_s", "Q4_K_S", 14, 4.67),
    qt("q4_k_m", "Q4_K_M", 15, 4.89),
    qt("q5_0", "Q5_0", 8, 5.5),
    qt("q5_1", "Q5_1", 9, 6.0),
    qt("q5_k_s", "Q5_K_S", 16, 5.57),
    qt("q5_k_m", "Q5_K_M", 17, 5.70),
    qt("q6_k", "Q6_K", 18, 6.56),
    qt("q8_0", "Q8_0", 7, 8.5),
    qt("f16", "F16", 1, 16.0),
    qt("bf16", "BF16", 32, 16.0),
    qt("f32", "F32", 0, 32.0),
    qt("iq4_nl", "IQ4_NL", 25, 4.68),
    qt("iq4_xs", "IQ4_XS", 30, 4.46),
    qt("iq3_s", "IQ3_S", 26, 3.66),
    qt("iq3_m", "IQ3_M", 27, 3.76),
];

/// MXFP4 experts with the rest in Q8_0 (gpt-oss's published format): made only for synthetic
/// Mixture-of-Experts models, whose expert tensors are written in MXFP4 from the start.
pub static MXFP4_MOE: QuantType = qt("mxfp4_moe", "MXFP4_MOE", 38, 4.25);

/// A type for a synthetic model: any of `ALL`, and `mxfp4_moe` for MoE architectures.
pub fn parse_for_synth(name: &str, moe: bool) -> Result<&'static QuantType, String> {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "mxfp4_moe" | "mxfp4" if moe => Ok(&MXFP4_MOE),
        "mxfp4_moe" | "mxfp4" => Err(format!(
            "{lower} is for Mixture-of-Experts models only; valid types: {}",
            valid_names()
        )),
        _ => parse(&lower),
    }
}

/// Short names accepted for the usual mixture of a k-quant family.
const ALIASES: [(&str, &str); 3] = [("q3_k", "q3_k_m"), ("q4_k", "q4_k_m"), ("q5_k", "q5_k_m")];

/// Types llama.cpp has that runner refuses, and why (completed by "; valid types: ...").
const REFUSED: [(&str, &str); 15] = [
    ("q2_k_s", NEEDS_IMATRIX),
    ("iq1_s", NEEDS_IMATRIX),
    ("iq1_m", NEEDS_IMATRIX),
    ("iq2_xxs", NEEDS_IMATRIX),
    ("iq2_xs", NEEDS_IMATRIX),
    ("iq2_s", NEEDS_IMATRIX),
    ("iq2_m", NEEDS_IMATRIX),
    ("iq3_xxs", NEEDS_IMATRIX),
    ("iq3_xs", NEEDS_IMATRIX),
    ("tq1_0", TERNARY),
    ("tq2_0", TERNARY),
    ("q1_0", "is for models trained with 1-bit weights only"),
    (
        "q2_0",
        "is for models trained with 1- or 2-bit weights only",
    ),
    (
        "mxfp4_moe",
        "is for Mixture-of-Experts models only (it quantizes expert tensors to MXFP4)",
    ),
    (
        "nvfp4",
        "is not a type this llama.cpp build's quantize API produces",
    ),
];

const NEEDS_IMATRIX: &str = "needs an importance matrix, which runner does not make";
const TERNARY: &str = "is for ternary-trained models (BitNet b1.58 and the like) only";

/// The names of [`ALL`], comma-separated: "q2_k, q3_k_s, ...".
fn valid_names() -> String {
    ALL.iter().map(|q| q.name).collect::<Vec<_>>().join(", ")
}

/// Looks up a quantization type by name (case-insensitive; `q3_k`, `q4_k`, `q5_k` mean the
/// `_m` mixtures). Refused and unknown names give a one-line reason listing the valid types.
pub fn parse(name: &str) -> Result<&'static QuantType, String> {
    let lower = name.trim().to_ascii_lowercase();
    let key = ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map_or(lower.as_str(), |(_, target)| target);
    if let Some(q) = ALL.iter().find(|q| q.name == key) {
        return Ok(q);
    }
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == key) {
        return Err(format!("{key} {why}; valid types: {}", valid_names()));
    }
    if key == "source" {
        return Err(format!(
            "'source' is not a quantization type (it stands for the file as given in a list); \
             valid types: {}",
            valid_names()
        ));
    }
    Err(format!(
        "unknown quantization '{}'; valid types: {}, and 'source' for the file as given",
        name.trim(),
        valid_names()
    ))
}

/// One entry of a quantization list: the model file as given, or a type to quantize it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantChoice {
    Source,
    Type(&'static QuantType),
}

impl QuantChoice {
    /// "source", or the type's name ("q4_k_m").
    pub fn label(&self) -> &str {
        match self {
            QuantChoice::Source => "source",
            QuantChoice::Type(q) => q.name,
        }
    }
}

/// Parses quantization arguments; each item may itself be a comma list ("q4_0,q8_0").
/// `source` means the file as given. Duplicates (also through aliases) are dropped, keeping
/// the first occurrence's place. An empty list or an empty entry is an error.
pub fn parse_list(items: &[String]) -> Result<Vec<QuantChoice>, String> {
    let mut out: Vec<QuantChoice> = Vec::new();
    for item in items {
        for part in item.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "empty entry in quantization list '{item}'; valid types: {}, and 'source'",
                    valid_names()
                ));
            }
            let choice = if part.eq_ignore_ascii_case("source") {
                QuantChoice::Source
            } else {
                QuantChoice::Type(parse(part)?)
            };
            if !out.contains(&choice) {
                out.push(choice);
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no quantization given; valid types: {}, and 'source' for the file as given",
            valid_names()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::file_type_name;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_has_the_types_that_need_no_importance_matrix() {
        let names: Vec<_> = ALL.iter().map(|q| q.name).collect();
        assert_eq!(
            names,
            [
                "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_0", "q4_1", "q4_k_s", "q4_k_m", "q5_0",
                "q5_1", "q5_k_s", "q5_k_m", "q6_k", "q8_0", "f16", "bf16", "f32", "iq4_nl",
                "iq4_xs", "iq3_s", "iq3_m"
            ]
        );
    }

    #[test]
    fn ftypes_and_display_names_agree_with_llama_h() {
        for q in &ALL {
            // file_type_name mirrors enum llama_ftype in llama.h.
            assert_eq!(
                file_type_name(u64::from(q.ftype)),
                Some(q.display),
                "{}",
                q.name
            );
            assert_eq!(q.display.to_ascii_lowercase(), q.name);
            assert!(q.approx_bpw > 2.0 && q.approx_bpw <= 32.0, "{}", q.name);
        }
        let mut ftypes: Vec<_> = ALL.iter().map(|q| q.ftype).collect();
        ftypes.sort_unstable();
        ftypes.dedup();
        assert_eq!(ftypes.len(), ALL.len(), "an ftype appears twice");
    }

    #[test]
    fn refused_names_are_real_llama_types_and_not_in_all() {
        for (name, _) in REFUSED {
            assert!(ALL.iter().all(|q| q.name != name), "{name}");
            let known = (0..64)
                .filter_map(file_type_name)
                .any(|d| d.eq_ignore_ascii_case(name));
            assert!(known, "{name} is not a llama_ftype");
        }
    }

    #[test]
    fn parse_is_case_insensitive() {
        assert_eq!(parse("Q4_K_M").unwrap().name, "q4_k_m");
        assert_eq!(parse("q8_0").unwrap().ftype, 7);
        assert_eq!(parse(" bf16 ").unwrap().ftype, 32);
        assert_eq!(parse("IQ4_XS").unwrap().display, "IQ4_XS");
    }

    #[test]
    fn aliases_pick_the_medium_mixture() {
        assert_eq!(parse("q4_k").unwrap().name, "q4_k_m");
        assert_eq!(parse("Q5_K").unwrap().name, "q5_k_m");
        assert_eq!(parse("q3_k").unwrap().name, "q3_k_m");
    }

    #[test]
    fn imatrix_types_are_refused_with_the_reason() {
        let err = parse("iq2_xxs").unwrap_err();
        assert!(
            err.starts_with(
                "iq2_xxs needs an importance matrix, which runner does not make; valid types: q2_k, q3_k_s,"
            ),
            "{err}"
        );
        for name in [
            "q2_k_s", "IQ1_S", "iq1_m", "iq2_xs", "iq2_s", "iq2_m", "iq3_xxs", "iq3_xs",
        ] {
            let err = parse(name).unwrap_err();
            assert!(err.contains("needs an importance matrix"), "{err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn special_purpose_types_are_refused_with_the_reason() {
        assert!(parse("tq1_0").unwrap_err().contains("ternary"));
        assert!(parse("TQ2_0").unwrap_err().contains("ternary"));
        assert!(parse("mxfp4_moe")
            .unwrap_err()
            .contains("Mixture-of-Experts"));
        assert!(parse("q1_0").unwrap_err().contains("1-bit"));
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = parse("q7_k").unwrap_err();
        assert!(
            err.starts_with("unknown quantization 'q7_k'; valid types: q2_k, q3_k_s, q3_k_m,"),
            "{err}"
        );
        assert!(
            err.ends_with("iq3_m, and 'source' for the file as given"),
            "{err}"
        );
        assert!(parse("").is_err());
        assert!(parse("source")
            .unwrap_err()
            .contains("'source' is not a quantization type"));
    }

    #[test]
    fn labels() {
        assert_eq!(QuantChoice::Source.label(), "source");
        assert_eq!(QuantChoice::Type(parse("q4_k").unwrap()).label(), "q4_k_m");
    }

    #[test]
    fn lists_split_commas_and_keep_first_order() {
        let got = parse_list(&strings(&[
            "q8_0,source",
            "Q4_K",
            "q4_k_m , q8_0",
            "SOURCE",
        ]))
        .unwrap();
        let labels: Vec<_> = got.iter().map(QuantChoice::label).collect();
        assert_eq!(labels, ["q8_0", "source", "q4_k_m"]);
        assert_eq!(got[1], QuantChoice::Source);
        assert_eq!(got[2], QuantChoice::Type(parse("q4_k_m").unwrap()));
    }

    #[test]
    fn list_errors() {
        assert!(parse_list(&[])
            .unwrap_err()
            .starts_with("no quantization given"));
        assert!(parse_list(&strings(&["q4_0,"]))
            .unwrap_err()
            .starts_with("empty entry in quantization list 'q4_0,'"));
        let err = parse_list(&strings(&["q4_0", "q9_9"])).unwrap_err();
        assert!(err.starts_with("unknown quantization 'q9_9'"), "{err}");
        let err = parse_list(&strings(&["q4_0,iq2_xs"])).unwrap_err();
        assert!(
            err.starts_with("iq2_xs needs an importance matrix"),
            "{err}"
        );
    }
}
