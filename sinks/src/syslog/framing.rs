//! Framing: how messages are told apart where they follow one another.
//!
//! On a stream (TCP, TLS, a local stream socket) each message goes in a frame (the `Framing`
//! key): `octet` is RFC 6587's octet counting, `LEN SP MSG`, as RFC 5425 requires over TLS; `lf`
//! ends each message with a newline; `nul` with a NUL byte (what the existing broker sends on a
//! local stream socket). A datagram carries one message as it is, except in the legacy format,
//! whose datagrams end with a NUL byte as Python's `SysLogHandler` sends them.
//!
//! A message never holds a newline or a NUL of its own (the JSON line is printable ASCII, and tags
//! and host names are checked), so `lf` and `nul` frames are unambiguous.

use super::format::Format;
use crate::util::confirmed::Framer;

broker_core::keyword_enum! {
    /// How messages are framed on a stream (the `Framing` key).
    pub enum Framing {
        /// RFC 6587 octet counting: the message's length in decimal, a space, the message.
        Octet = "octet",
        /// The message and a newline (RFC 6587 non-transparent framing with LF).
        Lf = "lf",
        /// The message and a NUL byte.
        Nul = "nul",
    }
}

impl Framing {
    /// The default on a local stream socket: `nul` for the legacy format (as the existing
    /// broker sends), `octet` for RFC 3164 and RFC 5424.
    pub fn local_stream_default(format: Format) -> Framing {
        match format {
            Format::Legacy => Framing::Nul,
            Format::Rfc3164 | Format::Rfc5424 => Framing::Octet,
        }
    }

    /// Appends `message` in its frame to `out`.
    pub fn frame_into(self, message: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Octet => {
                out.extend_from_slice(message.len().to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(message);
            }
            Framing::Lf => {
                out.extend_from_slice(message);
                out.push(b'\n');
            }
            Framing::Nul => {
                out.extend_from_slice(message);
                out.push(0);
            }
        }
    }
}

impl Framer for Framing {
    fn frame_into(&self, message: &[u8], out: &mut Vec<u8>) {
        Framing::frame_into(*self, message, out);
    }
}

/// The bytes of the datagram that carries `message` in `format`: the message, and a NUL byte
/// in the legacy format.
pub fn datagram(format: Format, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 1);
    out.extend_from_slice(message);
    if format == Format::Legacy {
        out.push(0);
    }
    out
}

/// Splits a stream of frames back into messages (for tests and receivers written in Rust). A
/// partial frame at the end is returned as the second value, unparsed.
pub fn split_frames(framing: Framing, mut bytes: &[u8]) -> Result<(Vec<&[u8]>, &[u8]), String> {
    let mut messages = Vec::new();
    loop {
        if bytes.is_empty() {
            return Ok((messages, bytes));
        }
        match framing {
            Framing::Octet => {
                let Some(space) = bytes.iter().position(|&b| b == b' ') else {
                    return Ok((messages, bytes));
                };
                let digits = &bytes[..space];
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(format!(
                        "bad octet count {:?}",
                        String::from_utf8_lossy(digits)
                    ));
                }
                let len: usize = String::from_utf8_lossy(digits)
                    .parse()
                    .map_err(|e| format!("bad octet count: {e}"))?;
                let rest = &bytes[space + 1..];
                if rest.len() < len {
                    return Ok((messages, bytes));
                }
                messages.push(&rest[..len]);
                bytes = &rest[len..];
            }
            Framing::Lf | Framing::Nul => {
                let end = if framing == Framing::Lf { b'\n' } else { 0 };
                let Some(at) = bytes.iter().position(|&b| b == end) else {
                    return Ok((messages, bytes));
                };
                messages.push(&bytes[..at]);
                bytes = &bytes[at + 1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let mut out = Vec::new();
        Framing::Octet.frame_into(b"<134>t: {}", &mut out);
        Framing::Lf.frame_into(b"<134>t: {}", &mut out);
        Framing::Nul.frame_into(b"<134>t: {}", &mut out);
        assert_eq!(out, b"10 <134>t: {}<134>t: {}\n<134>t: {}\0");
    }

    #[test]
    fn datagrams() {
        assert_eq!(datagram(Format::Legacy, b"<134>t: {}"), b"<134>t: {}\0");
        assert_eq!(datagram(Format::Rfc3164, b"<134>x"), b"<134>x");
        assert_eq!(datagram(Format::Rfc5424, b"<134>1 x"), b"<134>1 x");
    }

    #[test]
    fn defaults_on_a_local_stream() {
        assert_eq!(Framing::local_stream_default(Format::Legacy), Framing::Nul);
        assert_eq!(
            Framing::local_stream_default(Format::Rfc3164),
            Framing::Octet
        );
        assert_eq!(
            Framing::local_stream_default(Format::Rfc5424),
            Framing::Octet
        );
    }

    #[test]
    fn names() {
        assert_eq!("OCTET".parse::<Framing>(), Ok(Framing::Octet));
        assert_eq!("lf".parse::<Framing>(), Ok(Framing::Lf));
        assert_eq!(" Nul".parse::<Framing>(), Ok(Framing::Nul));
        assert_eq!(
            "crlf".parse::<Framing>().unwrap_err(),
            "unknown framing \"crlf\" (expected one of: octet, lf, nul)"
        );
        for name in Framing::NAMES {
            assert_eq!(name.parse::<Framing>().unwrap().to_string(), *name);
        }
    }

    #[test]
    fn split_round_trips() {
        let messages: [&[u8]; 3] = [b"<1>a", b"<2>b c", b""];
        for framing in [Framing::Octet, Framing::Lf, Framing::Nul] {
            let mut out = Vec::new();
            for m in messages {
                framing.frame_into(m, &mut out);
            }
            out.extend_from_slice(b"12");
            let (got, rest) = split_frames(framing, &out).unwrap();
            assert_eq!(got, messages, "{framing}");
            assert_eq!(rest, b"12");
        }
        assert!(split_frames(Framing::Octet, b"x1 a").is_err());
    }
}
