//! GUIDs as Splunk (HEC channels) and Azure (tenant and client ids) write them.

/// Whether `text` is a GUID: `8-4-4-4-12` hex digits, any case.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::is_guid;

    #[test]
    fn guids_and_not() {
        assert!(is_guid("0a1b2c3d-0000-4000-8000-0123456789AB"));
        for text in [
            "",
            "not-a-guid",
            "0a1b2c3d-0000-4000-8000-0123456789a",
            "0a1b2c3d00004000800001234567890ab",
            "0a1b2c3d-0000-4000-8000-0123456789ag",
        ] {
            assert!(!is_guid(text), "{text}");
        }
    }
}
