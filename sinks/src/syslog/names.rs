//! Syslog facility and priority names, as Python's `logging.handlers.SysLogHandler` spells them.
//!
//! The existing broker takes `Facility` and `Priority` from those tables, aliases included
//! (`security` for `auth`, `panic` for `emerg`, `warn` for `warning` ...). Names match
//! case-insensitively. An unknown name is a config error that lists the valid names (the existing
//! broker accepts it and then fails on every message).

use std::fmt;
use std::str::FromStr;

/// Every facility name and its code, in code order (aliases beside their code).
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("security", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("console", 14),
    ("solaris-cron", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Every priority (severity) name and its code, from the most to the least severe.
pub const PRIORITIES: &[(&str, u8)] = &[
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("critical", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// A syslog facility: which part of the system a message comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Facility(u8);

impl Facility {
    /// `local0`, the sink's default.
    pub const LOCAL0: Facility = Facility(16);

    /// The facility's code (`local0` is 16).
    pub fn code(self) -> u8 {
        self.0
    }
}

impl FromStr for Facility {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        lookup(FACILITIES, "facility", name).map(Facility)
    }
}

/// A syslog priority (severity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Priority(u8);

impl Priority {
    /// `info`, the sink's default.
    pub const INFO: Priority = Priority(6);

    /// The priority's code (`info` is 6).
    pub fn code(self) -> u8 {
        self.0
    }
}

impl FromStr for Priority {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        lookup(PRIORITIES, "priority", name).map(Priority)
    }
}

/// A facility or priority name that is not in the tables; its message lists the valid names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// `facility` or `priority`.
    pub what: &'static str,
    /// The name as given.
    pub name: String,
    /// The valid names.
    pub valid: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (expected one of: {})",
            self.what,
            self.name,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// The code of `name` in `table`, ignoring case and surrounding white space.
fn lookup(table: &[(&'static str, u8)], what: &'static str, name: &str) -> Result<u8, UnknownName> {
    let wanted = name.trim();
    table
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(wanted))
        .map(|(_, code)| *code)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_string(),
            valid: table.iter().map(|(known, _)| *known).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_codes() {
        let code = |name: &str| name.parse::<Facility>().unwrap().code();
        assert_eq!(code("kern"), 0);
        assert_eq!(code("user"), 1);
        assert_eq!(code("auth"), 4);
        assert_eq!(code("security"), 4);
        assert_eq!(code("authpriv"), 10);
        assert_eq!(code("solaris-cron"), 15);
        assert_eq!(code("LOCAL0"), 16);
        assert_eq!(code(" Local7 "), 23);
        assert_eq!(Facility::LOCAL0, "local0".parse().unwrap());
    }

    #[test]
    fn priority_codes() {
        let code = |name: &str| name.parse::<Priority>().unwrap().code();
        assert_eq!(code("emerg"), 0);
        assert_eq!(code("panic"), 0);
        assert_eq!(code("critical"), 2);
        assert_eq!(code("Error"), 3);
        assert_eq!(code("warn"), 4);
        assert_eq!(code("DEBUG"), 7);
        assert_eq!(Priority::INFO, "info".parse().unwrap());
    }

    #[test]
    fn unknown_names_list_valid_ones() {
        let err = "nope".parse::<Facility>().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("unknown facility \"nope\" (expected one of: kern, user, mail,"));
        assert!(text.ends_with("local6, local7)"), "{text}");
        let err = "loud".parse::<Priority>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown priority \"loud\" (expected one of: emerg, panic, alert, crit, critical, \
             err, error, warning, warn, notice, info, debug)"
        );
    }
}
