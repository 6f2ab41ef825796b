//! Flag values: the parsers of counts, shares and percentages, and the closed sets of the lower
//! layers (flash attention, KV types, output formats, routers) as clap value enums.

use crate::engine::{FlashAttn, KvType};
use crate::moe::Router;
use crate::report::{Format, ListFormat};
use clap::builder::PossibleValue;
use clap::ValueEnum;

pub use crate::util::flags::{
    parse_cores, parse_count, parse_gib, parse_percent, parse_positive, parse_seconds, parse_share,
};

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
        assert!(parse_positive("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_percent("5%"), Ok(0.05));
        assert!(parse_percent("100").is_err());
        assert!(parse_share("1.5").is_err());
        for bad in ["nan", "inf", "-1", "x"] {
            assert!(parse_cores(bad).is_err(), "{bad}");
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert!(parse_gib("0").is_err());
        assert_eq!(KvType::from_str("q8_0", true), Ok(KvType::Q8_0));
        assert_eq!(Format::from_str("md", true), Ok(Format::Md));
    }
}
