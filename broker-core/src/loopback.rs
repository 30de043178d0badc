//! Whether a URL names this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
//!
//! Such a URL may use plain `http://` (nothing leaves the host), and its HTTP clients ignore the
//! proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, lower case too): a proxy elsewhere
//! would reach another machine's loopback, or none. The API client and the webhook sink share
//! this one rule.

/// Whether `url`'s host is `localhost`, in `127.0.0.0/8` or `[::1]`; false for a URL that does
/// not parse. A name under `localhost` (`a.localhost`) is not loopback: it may resolve anywhere
/// (glibc asks DNS).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn loopback_is_localhost_127_and_the_v6_loopback_only() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.8.7/api/",
            "http://127.1/",
            "http://[::1]:80",
            "https://[::1]/",
            "http://localhost:1234",
            "http://LocalHost./",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://api.custodib.us",
            "http://10.0.0.1:80",
            "http://[::2]:80",
            "http://0.0.0.0",
            "http://localhost.example.com",
            "http://a.localhost/",
            "http://127.0.0.1.example.com",
            "http://127.0.0.1@evil.example.com",
            "http://[::1",
            "127.0.0.1:8080",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
