//! A small command-line parser for the bench binaries: `--key value` or `--key=value`, and
//! `--help`.

use std::path::PathBuf;
use std::process::exit;

/// The options given on the command line.
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Parses the process's arguments. Prints `usage` and exits 0 on `--help`; prints it and exits
    /// 2 on an option not in `known` (names without the dashes) or one without a value.
    pub fn from_env(usage: &str, known: &[&str]) -> Args {
        Self::parse(std::env::args().skip(1), usage, known)
    }

    fn parse(args: impl Iterator<Item = String>, usage: &str, known: &[&str]) -> Args {
        let mut pairs = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                exit(0);
            }
            let Some(option) = arg.strip_prefix("--") else {
                bad(usage, &format!("unexpected argument {arg:?}"));
            };
            let (key, value) = match option.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match args.next() {
                    Some(v) => (option.to_string(), v),
                    None => bad(usage, &format!("--{option} needs a value")),
                },
            };
            if !known.contains(&key.as_str()) {
                bad(usage, &format!("unknown option --{key}"));
            }
            pairs.push((key, value));
        }
        Args { pairs }
    }

    /// The last value given for `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` as a whole number (underscores allowed), or `default`; exits 2 when it is not one.
    pub fn number(&self, key: &str, default: usize) -> usize {
        match self.value(key) {
            None => default,
            Some(v) => v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("--{key} {v:?} is not a whole number");
                exit(2)
            }),
        }
    }

    /// `key` as a comma-separated list of positive whole numbers, or `default`.
    pub fn numbers(&self, key: &str, default: &[u32]) -> Vec<u32> {
        match self.value(key) {
            None => default.to_vec(),
            Some(v) => v
                .split(',')
                .map(|n| match n.trim().parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        eprintln!("--{key} {v:?} is not a list of positive whole numbers");
                        exit(2)
                    }
                })
                .collect(),
        }
    }

    /// `key` as a path.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.value(key).map(PathBuf::from)
    }
}

fn bad(usage: &str, message: &str) -> ! {
    eprintln!("{message}\n\n{usage}");
    exit(2)
}
