//! [`keyword_enum!`](crate::keyword_enum): an enum whose values a config key names by keyword
//! (`Protocol = tcp`), with its names, `FromStr` and `Display` generated from one list.

/// Declares an enum whose variants are named by keywords, and generates:
///
/// - `NAMES`: every keyword, in declaration order, and `ALL`: every variant, in the same order;
/// - `name(self) -> &'static str`, and `Display` writing the keyword;
/// - `FromStr` (`Err = String`): the keyword ignoring case and surrounding spaces; anything else
///   is `unknown protocol "quic" (expected one of: udp, tcp, tls, unix)`, where `protocol` is
///   the enum's name in lower case, its words apart (`BodyFormat`: `body format`).
///
/// The enum derives `Clone, Copy, Debug, PartialEq, Eq, Hash`; attributes (doc comments, more
/// derives such as `Default`, with `#[default]` on a variant) are kept.
///
/// ```
/// broker_core::keyword_enum! {
///     /// How messages travel.
///     pub enum Protocol {
///         /// Datagrams.
///         Udp = "udp",
///         /// A stream.
///         Tcp = "tcp",
///     }
/// }
/// assert_eq!("TCP".parse::<Protocol>(), Ok(Protocol::Tcp));
/// assert_eq!(Protocol::Udp.to_string(), "udp");
/// assert_eq!(Protocol::NAMES, ["udp", "tcp"]);
/// assert_eq!(
///     "quic".parse::<Protocol>().unwrap_err(),
///     "unknown protocol \"quic\" (expected one of: udp, tcp)"
/// );
/// ```
#[macro_export]
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $keyword:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $name {
            /// Every keyword, as the config takes it, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($keyword),+];

            /// Every value, in the order of [`Self::NAMES`].
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The keyword of this value.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $keyword),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            /// A keyword of [`Self::NAMES`], ignoring case and surrounding spaces.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let wanted = text.trim();
                Self::ALL
                    .iter()
                    .find(|value| value.name().eq_ignore_ascii_case(wanted))
                    .copied()
                    .ok_or_else(|| {
                        $crate::keyword::unknown(stringify!($name), text, Self::NAMES)
                    })
            }
        }
    };
}

/// The error of a generated `FromStr`: `unknown body format "x" (expected one of: a, b)` for
/// the enum `BodyFormat`.
#[doc(hidden)]
pub fn unknown(type_name: &str, text: &str, names: &[&str]) -> String {
    let mut what = String::new();
    for c in type_name.chars() {
        if c.is_ascii_uppercase() && !what.is_empty() {
            what.push(' ');
        }
        what.push(c.to_ascii_lowercase());
    }
    format!(
        "unknown {what} {text:?} (expected one of: {})",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    crate::keyword_enum! {
        /// A test enum with a default.
        #[derive(Default)]
        pub enum BodyFormat {
            /// One line per event.
            #[default]
            Ndjson = "ndjson",
            /// One array.
            Array = "array",
        }
    }

    #[test]
    fn names_parse_and_display() {
        assert_eq!(BodyFormat::NAMES, ["ndjson", "array"]);
        assert_eq!(BodyFormat::ALL, [BodyFormat::Ndjson, BodyFormat::Array]);
        assert_eq!(BodyFormat::default(), BodyFormat::Ndjson);
        assert_eq!(" ARRAY ".parse::<BodyFormat>(), Ok(BodyFormat::Array));
        for value in BodyFormat::ALL {
            assert_eq!(value.to_string().parse::<BodyFormat>(), Ok(*value));
        }
        assert_eq!(
            "xml".parse::<BodyFormat>().unwrap_err(),
            "unknown body format \"xml\" (expected one of: ndjson, array)"
        );
    }
}
