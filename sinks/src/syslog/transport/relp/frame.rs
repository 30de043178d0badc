//! RELP frames: building the client's commands and reading the receiver's frames.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR and DATALEN at most nine decimal
//! digits, COMMAND one to 32 ASCII letters, DATA exactly DATALEN bytes (and, with DATALEN 0,
//! neither the space nor data). The receiver's frames are outside input: [`Parser`] reads them
//! incrementally from whatever bytes arrived, bounds every field, and says what is wrong in one
//! line instead of panicking or buffering without end.

use std::fmt;
use std::io::Write;

/// The largest transaction number; the next after it is 1 again.
pub const MAX_TXNR: u32 = 999_999_999;

/// The most bytes of data the parser takes in one frame from the receiver: its answers are a
/// status line and, for `open`, a few offers.
pub const MAX_ANSWER_DATA: usize = 64 * 1024;

/// The longest command name.
const MAX_COMMAND: usize = 32;

/// The most digits of TXNR and DATALEN.
const MAX_DIGITS: usize = 9;

/// The transaction number after `txnr` (1 after [`MAX_TXNR`]).
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR {
        1
    } else {
        txnr + 1
    }
}

/// Appends the frame of one command to `out`.
pub fn encode(txnr: u32, command: &str, data: &[u8], out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{txnr} {command} {}", data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// One frame from the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The transaction number it answers (0 for a hint such as `serverclose`).
    pub txnr: u32,
    /// The command: `rsp`, `serverclose`, or anything else a receiver may send.
    pub command: String,
    /// The data, without the space before it.
    pub data: Vec<u8>,
}

/// What is wrong with the receiver's bytes (they are not RELP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadFrame(pub String);

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the receiver sent a malformed RELP frame: {}", self.0)
    }
}

/// Where the parser is in the current frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Txnr,
    Command,
    Datalen,
    Data,
    Trailer,
}

/// Reads the receiver's frames from the bytes as they arrive.
#[derive(Debug)]
pub struct Parser {
    state: State,
    digits: usize,
    txnr: u32,
    command: String,
    datalen: usize,
    data: Vec<u8>,
    broken: Option<BadFrame>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Txnr,
            digits: 0,
            txnr: 0,
            command: String::new(),
            datalen: 0,
            data: Vec::new(),
            broken: None,
        }
    }
}

impl Parser {
    /// Reads `bytes`, appending every frame they complete to `frames`. After an error every
    /// later call fails the same way: the stream is not RELP and must be dropped.
    pub fn push(&mut self, bytes: &[u8], frames: &mut Vec<Frame>) -> Result<(), BadFrame> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let mut rest = bytes;
        while let Some((&byte, after)) = rest.split_first() {
            if self.state == State::Data {
                // Copy as much of the data as arrived, at once.
                let take = (self.datalen - self.data.len()).min(rest.len());
                self.data.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.data.len() == self.datalen {
                    self.state = State::Trailer;
                }
                continue;
            }
            rest = after;
            if let Err(e) = self.byte(byte, frames) {
                self.broken = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// One byte outside the data.
    fn byte(&mut self, byte: u8, frames: &mut Vec<Frame>) -> Result<(), BadFrame> {
        let bad = |what: String| Err(BadFrame(what));
        match self.state {
            State::Txnr => match byte {
                b'0'..=b'9' if self.digits < MAX_DIGITS => {
                    self.txnr = self.txnr * 10 + u32::from(byte - b'0');
                    self.digits += 1;
                }
                b'0'..=b'9' => return bad("a transaction number of more than 9 digits".into()),
                b' ' if self.digits > 0 => {
                    self.state = State::Command;
                    self.digits = 0;
                }
                _ => {
                    return bad(format!(
                        "{} where a transaction number was due",
                        shown(byte)
                    ))
                }
            },
            State::Command => match byte {
                b'a'..=b'z' | b'A'..=b'Z' if self.command.len() < MAX_COMMAND => {
                    self.command.push(char::from(byte));
                }
                b'a'..=b'z' | b'A'..=b'Z' => return bad("a command of more than 32 letters".into()),
                b' ' if !self.command.is_empty() => self.state = State::Datalen,
                _ => return bad(format!("{} where a command was due", shown(byte))),
            },
            State::Datalen => match byte {
                b'0'..=b'9' if self.digits < MAX_DIGITS => {
                    self.datalen = self.datalen * 10 + usize::from(byte - b'0');
                    self.digits += 1;
                    if self.datalen > MAX_ANSWER_DATA {
                        return bad(format!(
                            "a {} frame of more than {MAX_ANSWER_DATA} bytes of data",
                            self.command
                        ));
                    }
                }
                b'0'..=b'9' => return bad("a data length of more than 9 digits".into()),
                b' ' if self.digits > 0 && self.datalen > 0 => {
                    self.state = State::Data;
                    self.data.reserve(self.datalen);
                }
                b'\n' if self.digits > 0 && self.datalen == 0 => self.finish(frames),
                _ => return bad(format!("{} where a data length was due", shown(byte))),
            },
            State::Data => unreachable!("data is copied in push"),
            State::Trailer => match byte {
                b'\n' => self.finish(frames),
                _ => {
                    return bad(format!(
                        "{} after {} bytes of data instead of a newline",
                        shown(byte),
                        self.datalen
                    ))
                }
            },
        }
        Ok(())
    }

    /// The frame is complete: hand it over and start the next.
    fn finish(&mut self, frames: &mut Vec<Frame>) {
        frames.push(Frame {
            txnr: self.txnr,
            command: std::mem::take(&mut self.command),
            data: std::mem::take(&mut self.data),
        });
        *self = Parser::default();
    }
}

/// A byte for a message: printable ASCII quoted, anything else in hex.
fn shown(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("{:?}", char::from(byte))
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// An `rsp` frame's data: `CODE [SP TEXT] [LF DATA]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The three-digit status: 200 is success.
    pub code: u16,
    /// The human-readable text after the code (printable ASCII only, at most 80 characters).
    pub text: String,
    /// What follows the first newline (the offers of an `open` answer).
    pub data: Vec<u8>,
}

impl Answer {
    /// Reads an `rsp` frame's data; tolerant of anything after the three digits.
    pub fn parse(data: &[u8]) -> Result<Answer, BadFrame> {
        let digits = data.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
        let Some(digits) = digits else {
            return Err(BadFrame(
                "an answer that does not start with a three-digit status".into(),
            ));
        };
        let code = digits
            .iter()
            .fold(0u16, |code, d| code * 10 + u16::from(d - b'0'));
        let rest = &data[3..];
        let (line, data) = match rest.iter().position(|b| *b == b'\n') {
            Some(at) => (&rest[..at], rest[at + 1..].to_vec()),
            None => (rest, Vec::new()),
        };
        let text: String = line
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    char::from(*b)
                } else {
                    ' '
                }
            })
            .take(80)
            .collect();
        Ok(Answer {
            code,
            text: text.trim().to_string(),
            data,
        })
    }
}

/// The offers of a client's `open`: RELP version 0, this software, the `syslog` command.
pub fn open_offers() -> Vec<u8> {
    format!(
        "relp_version=0\nrelp_software=procustodibus-broker,{},https://www.procustodibus.com\n\
         commands=syslog",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// Whether the receiver's offers (the data of its answer to `open`) enable the `syslog`
/// command: a line `commands=a,b,...` that names it.
pub fn offers_syslog(offers: &[u8]) -> bool {
    offers
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"commands="))
        .any(|commands| {
            commands
                .split(|b| *b == b',')
                .any(|c| c.trim_ascii() == b"syslog")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> Result<Vec<Frame>, BadFrame> {
        let mut frames = Vec::new();
        Parser::default().push(bytes, &mut frames)?;
        Ok(frames)
    }

    fn frame(txnr: u32, command: &str, data: &[u8]) -> Frame {
        Frame {
            txnr,
            command: command.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn encodes_commands_as_librelp_does() {
        let mut out = Vec::new();
        encode(1, "syslog", b"<134>t: {}", &mut out);
        encode(2, "close", b"", &mut out);
        assert_eq!(out, b"1 syslog 10 <134>t: {}\n2 close 0\n");
    }

    #[test]
    fn reads_answers_hints_and_open_offers() {
        let mut bytes = Vec::new();
        let offers = b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\n\
                       commands=syslog";
        encode(
            1,
            "rsp",
            &[b"200 OK\n".as_slice(), offers].concat(),
            &mut bytes,
        );
        bytes.extend_from_slice(b"2 rsp 6 200 OK\n0 serverclose 0\n");
        let frames = parse_all(&bytes).unwrap();
        assert_eq!(frames.len(), 3);
        let open = Answer::parse(&frames[0].data).unwrap();
        assert_eq!((open.code, open.text.as_str()), (200, "OK"));
        assert!(offers_syslog(&open.data));
        assert_eq!(frames[1], frame(2, "rsp", b"200 OK"));
        assert_eq!(frames[2], frame(0, "serverclose", b""));
    }

    #[test]
    fn a_frame_may_arrive_in_any_pieces() {
        let bytes = b"12 rsp 25 500 queue full, try later\n";
        let mut parser = Parser::default();
        let mut frames = Vec::new();
        for byte in bytes {
            parser.push(&[*byte], &mut frames).unwrap();
        }
        assert_eq!(frames, vec![frame(12, "rsp", b"500 queue full, try later")]);
        let answer = Answer::parse(&frames[0].data).unwrap();
        assert_eq!(
            (answer.code, answer.text.as_str()),
            (500, "queue full, try later")
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let error = |bytes: &[u8]| parse_all(bytes).unwrap_err().to_string();
        assert_eq!(
            error(b"x rsp 0\n"),
            "the receiver sent a malformed RELP frame: 'x' where a transaction number was due"
        );
        assert!(error(b"1234567890 rsp 0\n").contains("more than 9 digits"));
        assert!(error(b"1 rsp 6 200 OKX\n").contains("'X' after 6 bytes of data"));
        assert!(error(b"1 r-p 0\n").contains("'-' where a command was due"));
        assert!(error(b"1 rsp 999999 ").contains("more than 65536 bytes"));
        assert!(error(b"1 rsp 0 \n").contains("byte 0x20 where a data length was due"));
        assert!(error(b"1 rsp 5\n").contains("byte 0x0a where a data length was due"));
        let mut parser = Parser::default();
        let mut frames = Vec::new();
        assert!(parser.push(b"\0", &mut frames).is_err());
        assert!(
            parser.push(b"1 rsp 0\n", &mut frames).is_err(),
            "stays broken"
        );
        assert!(Answer::parse(b"OK").is_err());
        assert!(!offers_syslog(b"relp_version=0\ncommands=other"));
    }

    proptest! {
        /// Any bytes, cut anywhere: frames or a clear error, never a panic, and never more
        /// data held than a frame may carry.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                         cut in 0usize..512) {
            let mut parser = Parser::default();
            let mut frames = Vec::new();
            let cut = cut.min(bytes.len());
            if parser.push(&bytes[..cut], &mut frames).is_ok() {
                let _ = parser.push(&bytes[cut..], &mut frames);
            }
            prop_assert!(parser.data.capacity() <= MAX_ANSWER_DATA.max(512));
            for frame in &frames {
                let _ = Answer::parse(&frame.data);
            }
        }

        /// What `encode` writes, the parser reads back, whole or in two pieces.
        #[test]
        fn encoded_frames_read_back(txnr in 0u32..=MAX_TXNR, command in "[a-zA-Z]{1,32}",
                                    data in proptest::collection::vec(any::<u8>(), 0..300),
                                    cut in 0usize..400) {
            let mut bytes = Vec::new();
            encode(txnr, &command, &data, &mut bytes);
            encode(next_txnr(txnr), "rsp", b"200 OK", &mut bytes);
            let cut = cut.min(bytes.len());
            let mut parser = Parser::default();
            let mut frames = Vec::new();
            parser.push(&bytes[..cut], &mut frames).unwrap();
            parser.push(&bytes[cut..], &mut frames).unwrap();
            prop_assert_eq!(frames, vec![frame(txnr, &command, &data),
                                         frame(next_txnr(txnr), "rsp", b"200 OK")]);
        }
    }

    #[test]
    fn transaction_numbers_wrap_to_one() {
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }
}
