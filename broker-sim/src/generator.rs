//! A deterministic generator of realistic events for the four queues.
//!
//! Events are JSON:API resource objects (`{"type": ..., "id": ..., "attributes": {...},
//! "relationships": {...}}`) shaped like what the Pro Custodibus API sends, salted with what
//! trips up a re-encoder: non-ASCII text (accents, Chinese, right-to-left scripts), emoji beyond
//! the BMP, DEL and other control characters, `/` and `\/`, integers beyond 2^53 and beyond
//! u64, decimals like `1.50`, varied white space and key order, and one event in 200 (or in
//! [`SimOptions::large_every`](crate::SimOptions::large_every)) of around 10 KB. The same seed gives the same events; every id is unique per generator.

use chrono::DateTime;

use crate::event_type::EventType;
use crate::json_text::{self, Json, Layout};
use crate::rng::Rng;

/// Texts that a faithful re-encoder must get right.
const TRICKY: &[&str] = &[
    "Café crème, naïve façade, résumé",
    "Grüße aus Zürich – Übergröße",
    "数据中心的主机 北京 上海",
    "שלום עולם (right-to-left)",
    "مرحبا بالعالم",
    "deployed 😀🚀 on time",
    "family 👨\u{200d}👩\u{200d}👧 and 𝄞 music",
    "config at /etc/wireguard/wg0.conf",
    "https://example.com/a/b?c=d&e=f",
    "bell\u{7} nul\u{0} soh\u{1} unit\u{1f} escape\u{1b} done",
    "delete\u{7f}char",
    "tab\there, newline\nthere, cr\r, ff\u{c}, bs\u{8}",
    "quote \" and backslash \\ and both \\\"",
    "κλειδί, ключ, キー, 키",
    "line\u{2028}separator\u{2029}paragraph",
    "mark\u{200f}rtl\u{200e}ltr\u{feff}bom",
];

/// Plain texts for ordinary fields.
const PLAIN: &[&str] = &[
    "office gateway",
    "laptop of alice",
    "build server",
    "backup node",
    "remote worker",
    "branch router",
];

const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];
const ALERT_TITLES: &[&str] = &[
    "Endpoint handshake overdue",
    "New endpoint connected",
    "Interface down",
    "Unexpected endpoint address",
    "Key rotation due",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "curl/8.5.0",
    "procustodibus-agent/1.6.2 (Linux; Python/3.11.2)",
];
const AUTHN_RESULTS: &[&str] = &["success", "failure", "mfa_required", "locked"];
const AUTHN_METHODS: &[&str] = &["password", "api_key", "webauthn", "sso"];
const CHANGE_ACTIONS: &[&str] = &["create", "update", "delete"];
const RESOURCE_TYPES: &[&str] = &["endpoints", "interfaces", "hosts", "peers", "users"];
/// Decimals whose exact text must survive (Python would rewrite most of them).
const DECIMALS: &[&str] = &[
    "1.50", "0.10", "2.5e3", "1E-7", "-0.0", "100.000", "3.14159",
];
/// Integers around and beyond what a double or a u64 holds.
const BIG_INTEGERS: &[&str] = &[
    "18446744073709551615",
    "9007199254740993",
    "9223372036854775807",
    "123456789012345678901234567890",
];

/// Start of generated timestamps: 2024-05-01T08:00:00Z.
const BASE_TIME: i64 = 1_714_550_400;

/// Produces reproducible, valid, realistic events; see the module documentation.
#[derive(Debug, Clone)]
pub struct EventGenerator {
    rng: Rng,
    seq: u64,
    large_every: u64,
}

/// One event in this many is about 10 KB, unless a generator is told otherwise.
pub const LARGE_EVERY: u64 = 200;

impl EventGenerator {
    /// A generator whose events depend only on `seed`.
    pub fn new(seed: u64) -> EventGenerator {
        Self::with_large_every(seed, LARGE_EVERY)
    }

    /// A generator whose events depend only on `seed`, one in `large_every` of them (the one in
    /// the middle of each run of `large_every`) about 10 KB; 0 for none.
    pub fn with_large_every(seed: u64, large_every: u64) -> EventGenerator {
        EventGenerator {
            rng: Rng::new(seed),
            seq: 0,
            large_every,
        }
    }

    /// The raw JSON text of the next event of type `event_type`.
    pub fn generate(&mut self, event_type: EventType) -> String {
        self.seq += 1;
        let seq = self.seq;
        let id = format!("{}{:06}{}", id_prefix(event_type), seq, self.rng.hex(5));
        let large = self.large_every > 0 && seq % self.large_every == self.large_every / 2;
        let (mut attributes, relationships) = match event_type {
            EventType::Alerts => self.alert(seq, large),
            EventType::EndpointStats => self.endpoint_stats(seq),
            EventType::LogAuthn => self.log_authn(seq),
            EventType::LogChanges => self.log_changes(seq),
        };
        if let (true, Json::Obj(members)) =
            (large && event_type != EventType::Alerts, &mut attributes)
        {
            members.push(("description".to_string(), Json::Str(self.large_text())));
        }
        let type_member = ("type".to_string(), Json::s(event_type.as_str()));
        let id_member = ("id".to_string(), Json::s(&id));
        let mut members = if self.rng.one_in(4) {
            vec![id_member, type_member]
        } else {
            vec![type_member, id_member]
        };
        members.push(("attributes".to_string(), attributes));
        members.push(("relationships".to_string(), relationships));
        if self.rng.one_in(3) {
            members.push((
                "links".to_string(),
                Json::obj([(
                    "self",
                    Json::s(format!(
                        "https://api.custodib.us/{}/{id}",
                        event_type.as_str()
                    )),
                )]),
            ));
        }
        let layout = match self.rng.below(10) {
            0 | 1 => Layout::Pretty("  "),
            2 => Layout::Pretty("\t"),
            3 | 4 => Layout::Spaced,
            _ => Layout::Compact,
        };
        json_text::write(&Json::Obj(members), layout, &mut self.rng)
    }

    fn alert(&mut self, seq: u64, large: bool) -> (Json, Json) {
        let host = self.ref_id("host");
        let iface = self.ref_id("intf");
        let endpoint = self.ref_id("endp");
        let description = if large {
            self.large_text()
        } else {
            format!("{} ({})", self.text(), self.text())
        };
        let attributes = Json::obj([
            ("severity", Json::s(*self.rng.pick(SEVERITIES))),
            ("title", Json::s(*self.rng.pick(ALERT_TITLES))),
            ("description", Json::Str(description)),
            ("created", self.timestamp(seq)),
            ("occurrences", Json::n(self.rng.below(50) + 1)),
            ("score", self.decimal()),
            ("acknowledged", Json::Bool(self.rng.one_in(3))),
            (
                "host",
                Json::obj([
                    ("id", Json::s(&host)),
                    ("name", self.text_json()),
                    ("tags", Json::Arr(vec![Json::s("prod"), self.text_json()])),
                ]),
            ),
            (
                "interface",
                Json::obj([
                    ("id", Json::s(&iface)),
                    ("name", Json::s(format!("wg{}", self.rng.below(4)))),
                    ("public_key", Json::s(self.fake_key())),
                ]),
            ),
            (
                "endpoint",
                Json::obj([
                    ("id", Json::s(&endpoint)),
                    ("name", self.text_json()),
                    ("address", Json::s(self.socket_address())),
                ]),
            ),
            ("resolved", Json::Null),
        ]);
        let relationships = Json::obj([
            ("host", relation("hosts", &host)),
            ("interface", relation("interfaces", &iface)),
            ("endpoint", relation("endpoints", &endpoint)),
        ]);
        (attributes, relationships)
    }

    fn endpoint_stats(&mut self, seq: u64) -> (Json, Json) {
        let endpoint = self.ref_id("endp");
        let iface = self.ref_id("intf");
        let octet = self.rng.below(254) + 1;
        let latest = if self.rng.one_in(5) {
            Json::Null
        } else {
            self.timestamp(seq)
        };
        let attributes = Json::obj([
            ("created", self.timestamp(seq)),
            ("handshake", self.timestamp(seq.saturating_sub(3))),
            ("latest_handshake", latest),
            ("endpoint", Json::s(self.socket_address())),
            ("rx_bytes", self.byte_count()),
            ("tx_bytes", self.byte_count()),
            ("rx_rate", self.decimal()),
            ("tx_rate", self.decimal()),
            (
                "persistent_keepalive",
                Json::n(*self.rng.pick(&[0, 25, 60])),
            ),
            (
                "allowed_ips",
                Json::Arr(vec![
                    Json::s(format!("10.0.0.{octet}/32")),
                    Json::s(format!("fd00::{octet:x}/128")),
                ]),
            ),
            (
                "peer",
                Json::obj([
                    ("name", self.text_json()),
                    ("public_key", Json::s(self.fake_key())),
                ]),
            ),
        ]);
        let relationships = Json::obj([
            ("endpoint", relation("endpoints", &endpoint)),
            ("interface", relation("interfaces", &iface)),
        ]);
        (attributes, relationships)
    }

    fn log_authn(&mut self, seq: u64) -> (Json, Json) {
        let user = self.ref_id("user");
        let reason = if self.rng.one_in(2) {
            Json::Null
        } else {
            self.text_json()
        };
        let ip = if self.rng.one_in(3) {
            format!("2001:db8::{:x}", self.rng.below(0xffff))
        } else {
            format!("198.51.100.{}", self.rng.below(254) + 1)
        };
        let attributes = Json::obj([
            ("created", self.timestamp(seq)),
            (
                "user",
                Json::obj([
                    ("id", Json::s(&user)),
                    ("email", Json::s(format!("user{}@example.com", seq % 97))),
                    ("name", self.text_json()),
                ]),
            ),
            ("ip", Json::s(ip)),
            ("user_agent", Json::s(*self.rng.pick(USER_AGENTS))),
            ("method", Json::s(*self.rng.pick(AUTHN_METHODS))),
            ("result", Json::s(*self.rng.pick(AUTHN_RESULTS))),
            ("reason", reason),
            ("attempts", Json::n(self.rng.below(5) + 1)),
        ]);
        let relationships = Json::obj([("user", relation("users", &user))]);
        (attributes, relationships)
    }

    fn log_changes(&mut self, seq: u64) -> (Json, Json) {
        let user = self.ref_id("user");
        let resource_type = *self.rng.pick(RESOURCE_TYPES);
        let resource = self.ref_id("rsrc");
        let action = *self.rng.pick(CHANGE_ACTIONS);
        let before = if action == "create" {
            Json::Null
        } else {
            self.settings()
        };
        let after = if action == "delete" {
            Json::Null
        } else {
            self.settings()
        };
        let attributes = Json::obj([
            ("created", self.timestamp(seq)),
            ("action", Json::s(action)),
            (
                "resource",
                Json::obj([("type", Json::s(resource_type)), ("id", Json::s(&resource))]),
            ),
            (
                "keys",
                Json::Arr(vec![
                    Json::s("name"),
                    Json::s("allowed_ips"),
                    Json::s("description"),
                ]),
            ),
            ("before", before),
            ("after", after),
            (
                "user",
                Json::obj([("id", Json::s(&user)), ("name", self.text_json())]),
            ),
        ]);
        let relationships = Json::obj([
            ("user", relation("users", &user)),
            (resource_type, relation(resource_type, &resource)),
        ]);
        (attributes, relationships)
    }

    /// A settings object for a change log's `before`/`after`.
    fn settings(&mut self) -> Json {
        Json::obj([
            ("name", self.text_json()),
            (
                "allowed_ips",
                Json::Arr(vec![Json::s(format!("10.1.{}.0/24", self.rng.below(255)))]),
            ),
            ("description", self.text_json()),
            ("mtu", Json::n(1280 + self.rng.below(200))),
            ("weight", self.decimal()),
            ("enabled", Json::Bool(self.rng.one_in(2))),
        ])
    }

    /// A text for an ordinary field: tricky about one time in three.
    fn text(&mut self) -> String {
        if self.rng.one_in(3) {
            (*self.rng.pick(TRICKY)).to_string()
        } else {
            (*self.rng.pick(PLAIN)).to_string()
        }
    }

    fn text_json(&mut self) -> Json {
        Json::Str(self.text())
    }

    /// A description of about 10 KB, mixing every tricky text.
    fn large_text(&mut self) -> String {
        let mut text = String::with_capacity(10_500);
        let mut i = 0usize;
        while text.len() < 10_000 {
            text.push_str(TRICKY[i % TRICKY.len()]);
            text.push_str(" | ");
            i += 1;
        }
        text
    }

    fn ref_id(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", self.rng.hex(6))
    }

    /// A UTC timestamp near the `seq`-th event, sometimes with fractional seconds.
    fn timestamp(&mut self, seq: u64) -> Json {
        let offset = i64::try_from(seq.saturating_mul(53) + self.rng.below(50)).unwrap_or(0);
        let Some(time) = DateTime::from_timestamp(BASE_TIME.saturating_add(offset), 0) else {
            return Json::s("2024-05-01T08:00:00Z");
        };
        if self.rng.one_in(4) {
            let micros = self.rng.below(1_000_000);
            Json::s(format!("{}.{micros:06}Z", time.format("%Y-%m-%dT%H:%M:%S")))
        } else {
            Json::s(time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
    }

    fn decimal(&mut self) -> Json {
        if self.rng.one_in(3) {
            Json::n(*self.rng.pick(DECIMALS))
        } else {
            Json::n(format!(
                "{}.{:02}",
                self.rng.below(1000),
                self.rng.below(100)
            ))
        }
    }

    fn byte_count(&mut self) -> Json {
        if self.rng.one_in(8) {
            Json::n(*self.rng.pick(BIG_INTEGERS))
        } else {
            Json::n(self.rng.below(1 << 40))
        }
    }

    /// An endpoint address, IPv4 or bracketed IPv6, with port (documentation ranges only).
    fn socket_address(&mut self) -> String {
        let port = 51820 + self.rng.below(100);
        if self.rng.one_in(3) {
            format!(
                "[2001:db8:{:x}::{:x}]:{port}",
                self.rng.below(0xffff),
                self.rng.below(0xffff)
            )
        } else {
            let net = *self.rng.pick(&["192.0.2", "198.51.100", "203.0.113"]);
            format!("{net}.{}:{port}", self.rng.below(254) + 1)
        }
    }

    /// Something that looks like a WireGuard public key (44 chars of standard base64).
    fn fake_key(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut key: String = (0..43)
            .map(|_| char::from(*self.rng.pick(ALPHABET)))
            .collect();
        key.push('=');
        key
    }
}

/// The JSON:API relationship `{"data": {"type": ..., "id": ...}}`.
fn relation(kind: &str, id: &str) -> Json {
    Json::obj([(
        "data",
        Json::obj([("type", Json::s(kind)), ("id", Json::s(id))]),
    )])
}

fn id_prefix(event_type: EventType) -> &'static str {
    match event_type {
        EventType::Alerts => "alrt",
        EventType::EndpointStats => "stat",
        EventType::LogAuthn => "athn",
        EventType::LogChanges => "chng",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn events_are_valid_unique_and_typed() {
        let mut generator = EventGenerator::new(42);
        let mut ids = HashSet::new();
        let mut large = 0;
        for i in 0..2000 {
            let t = EventType::ALL[i % 4];
            let raw = generator.generate(t);
            let value: serde_json::Value =
                serde_json::from_str(&raw).unwrap_or_else(|e| panic!("invalid JSON ({e}): {raw}"));
            assert_eq!(value["type"], t.as_str());
            assert!(value["attributes"].is_object());
            assert!(value["relationships"].is_object());
            let id = value["id"].as_str().unwrap().to_string();
            assert!(ids.insert(id), "duplicate id in {raw}");
            if raw.len() > 10_000 {
                large += 1;
            }
        }
        assert!((1..=10).contains(&large), "{large} large events");
    }

    #[test]
    fn large_every_sets_the_share_of_large_events() {
        for (every, want) in [(100, 10), (0, 0)] {
            let mut generator = EventGenerator::with_large_every(3, every);
            let large = (0..1000)
                .map(|_| generator.generate(EventType::LogAuthn))
                .filter(|raw| raw.len() > 10_000)
                .count();
            assert_eq!(large, want, "one in {every}");
        }
    }

    #[test]
    fn events_carry_the_tricky_bits() {
        let mut generator = EventGenerator::new(1);
        let all: String = (0..800)
            .map(|i| generator.generate(EventType::ALL[i % 4]))
            .collect();
        for needle in [
            "é",
            "😀",
            "中",
            "ש",
            "\u{7f}",
            "\\u0001",
            "\\/",
            "/etc/",
            "\\ud83d",
            "18446744073709551615",
            "1.50",
            "\n  ",
            ", \"",
            "{\"id\":",
            "[2001:db8:",
        ] {
            assert!(all.contains(needle), "no {needle:?} in generated events");
        }
    }

    #[test]
    fn same_seed_same_events() {
        let mut a = EventGenerator::new(9);
        let mut b = EventGenerator::new(9);
        for t in EventType::ALL {
            assert_eq!(a.generate(t), b.generate(t));
        }
    }
}
