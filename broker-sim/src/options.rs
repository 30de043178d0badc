//! Settings of one simulator instance.

use std::time::Duration;

/// How a [`Simulator`](crate::Simulator) behaves; start from `SimOptions::default()` and change
/// what a test needs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Port to listen on at 127.0.0.1; 0 (the default) picks a free one.
    pub port: u16,
    /// How long a session token stays valid (default 3600 s). Reported to the client, in whole
    /// seconds rounded down, as `expiration_timeout`; the token really expires after exactly
    /// this duration, so sub-second lifetimes work for tests but report 0.
    pub session_lifetime: Duration,
    /// How long an unused login challenge stays valid (default 5 minutes).
    pub challenge_lifetime: Duration,
    /// Most events one pull answers, whatever `max` asks for (default 1000).
    pub max_cap: u32,
    /// How the API's answers are written (default [`AnswerStyle::Plain`]).
    pub answer_style: AnswerStyle,
    /// Seed of the deterministic event generator (default 1).
    pub seed: u64,
    /// One generated event in this many is about 10 KB (default 200; 0 for none).
    pub large_every: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            port: 0,
            session_lifetime: Duration::from_secs(3600),
            challenge_lifetime: Duration::from_secs(300),
            max_cap: 1000,
            answer_style: AnswerStyle::Plain,
            seed: 1,
            large_every: crate::generator::LARGE_EVERY,
        }
    }
}

/// How the simulator writes its answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnswerStyle {
    /// Just the members the API documents, in order.
    #[default]
    Plain,
    /// The same facts with everything a client must tolerate around the fields it needs:
    /// extra members, `null` or values of other types in members it does not use, optional
    /// members left out, extra `data` elements that are not resources, and an unhealthy health
    /// entry's error as an object.
    Tolerant,
}

impl std::str::FromStr for AnswerStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(AnswerStyle::Plain),
            "tolerant" => Ok(AnswerStyle::Tolerant),
            other => Err(format!(
                "unknown answer style {other:?}: use plain or tolerant"
            )),
        }
    }
}
