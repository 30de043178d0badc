//! Key helpers shared by every file the broker reads: how keys are compared
//! ([`canonical_key`]), how they are shown ([`camel_case`]), and the size values of `[Broker]`
//! ([`parse_size`]).

use super::readers;

/// The canonical form of a key or section-name part: `PrivateKey`, `privatekey` and
/// `private_key` are all `privatekey`.
pub fn canonical_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `private_key` -> `PrivateKey`, `c_a` -> `CA`: a key as the files write it.
pub fn camel_case(key: &str) -> String {
    key.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `256M` -> 268435456: a whole number of bytes with an optional `K`, `M` or `G` suffix (powers
/// of 1024, either case), at least 4K.
pub fn parse_size(text: &str) -> Option<u64> {
    readers::parse_size(text).filter(|bytes| *bytes >= 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("16k"), Some(16 << 10));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("5000"), Some(5000));
        for bad in ["", "M", "1.5M", "-1M", "10T", "100", "99999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
