//! Closed sets of names: an enum whose variants each have one fixed name, shown, parsed and
//! written (serde) as that name, so that records hold the same strings they always held.

/// Declares an enum of named variants with `ALL`, `as_str`, `Display`, `FromStr` (the error
/// lists the names) and serde as the name.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $crate::util::names::parse(s, $name::ALL, |v| v.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&s, $name::NAMES))
            }
        }
    };
}
pub(crate) use named_enum;

/// The one of `all` named `s` (any case); the error lists the names.
pub fn parse<T: Copy>(s: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Result<T, String> {
    let s = s.trim();
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            format!("'{s}' is not one of {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    crate::util::names::named_enum! {
        /// A test set.
        enum Colour {
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn names_show_parse_and_serialise() {
        assert_eq!(Colour::DarkBlue.to_string(), "dark-blue");
        assert_eq!("RED".parse::<Colour>(), Ok(Colour::Red));
        let e = "green".parse::<Colour>().unwrap_err();
        assert!(e.contains("red, dark-blue"), "{e}");
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark-blue\""
        );
        assert_eq!(
            serde_json::from_str::<Colour>("\"red\"").unwrap(),
            Colour::Red
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        assert_eq!(Colour::ALL.len(), 2);
    }
}
