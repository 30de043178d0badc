//! The host's fully qualified name, for the description of a key registered by setup
//! (`on host.example.com`). Like the existing broker's `socket.getfqdn()`, it prefers a name
//! with a domain; unlike it, it never answers `localhost` for a host whose name resolves to a
//! loopback address: it falls back to the host name.

use std::ffi::{CStr, CString};

/// The canonical name the resolver gives for this host's name; the plain host name when the
/// resolver knows no better (blocking: it may ask DNS).
pub fn fqdn() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    if host.contains('.') {
        return host;
    }
    canonical_name(&host)
        .filter(|name| name.contains('.') && !name.starts_with("localhost"))
        .unwrap_or(host)
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; getaddrinfo writes a list to `result`
    // that we read only when it returned 0, and free exactly once with freeaddrinfo.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_family = libc::AF_UNSPEC;
        let mut result: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut result) != 0 {
            return None;
        }
        let name = if result.is_null() || (*result).ai_canonname.is_null() {
            None
        } else {
            Some(
                CStr::from_ptr((*result).ai_canonname)
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        libc::freeaddrinfo(result);
        name
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fqdn_is_not_empty_and_starts_with_the_host_name() {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let name = super::fqdn();
        assert!(!name.is_empty());
        assert!(
            name.starts_with(host.split('.').next().unwrap_or_default()),
            "{name} vs {host}"
        );
    }
}
