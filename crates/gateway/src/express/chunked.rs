//! Where a chunked body ends (RFC 9112 §7.1), found while its bytes pass
//! through unchanged. Written here because httparse reads a chunk-size line
//! only when it is held whole, and a body passed on as it arrives comes in
//! pieces split anywhere.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

#[derive(Debug, Default)]
pub struct Chunked {
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// In a chunk-size line's hex digits.
    Size {
        digits: u8,
        size: u64,
    },
    /// In a chunk extension, up to the line's end.
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends all.
    LineStart,
    Trailer,
    FinalLf,
    Done,
}

impl Default for State {
    fn default() -> Self {
        State::Size { digits: 0, size: 0 }
    }
}

impl Chunked {
    /// Reads the next bytes of the body. `Some(n)`: it ends after the
    /// first `n` of them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Malformed> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.state = match self.state {
                State::Size { digits, size } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => State::Size { digits: digits + 1, size: size << 4 | u64::from(d) },
                    None if digits > 0 && matches!(b, b';' | b' ' | b'\t') => State::Extension { size },
                    None if digits > 0 && b == b'\r' => State::SizeLf { size },
                    _ => return Err(Malformed),
                },
                State::Extension { size } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err(Malformed),
                    _ => State::Extension { size },
                },
                State::SizeLf { size: 0 } if b == b'\n' => State::LineStart,
                State::SizeLf { size } if b == b'\n' => State::Data(size),
                State::Data(left) => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == left { State::DataCr } else { State::Data(left - take) };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::default(),
                State::LineStart if b == b'\r' => State::FinalLf,
                State::LineStart | State::Trailer => {
                    if b == b'\n' {
                        State::LineStart
                    } else {
                        State::Trailer
                    }
                }
                State::FinalLf if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(Some(i + 1));
                }
                State::Done => return Ok(Some(i)),
                _ => return Err(Malformed),
            };
            i += 1;
        }
        Ok(matches!(self.state, State::Done).then_some(bytes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; where it ends.
    fn end(body: &[u8], step: usize) -> Result<Option<usize>, Malformed> {
        let mut c = Chunked::default();
        let mut at = 0;
        for piece in body.chunks(step) {
            if let Some(n) = c.feed(piece)? {
                return Ok(Some(at + n));
            }
            at += piece.len();
        }
        Ok(None)
    }

    #[test]
    fn the_end_is_found_however_the_bytes_are_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            assert_eq!(end(body, step), Ok(Some(body.len() - 4)), "split every {step} bytes");
        }
        assert_eq!(end(b"0\r\n\r\n", 2), Ok(Some(5)));
        assert_eq!(end(b"4\r\nwiki\r\n", 3), Ok(None), "not ended yet");
    }

    /// A well-formed chunked body: its chunks (with extensions), trailers,
    /// and what follows it on the connection.
    fn body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let chunk =
            (prop::collection::vec(any::<u8>(), 1..40), any::<bool>(), any::<bool>()).prop_map(|(data, ext, upper)| {
                let size = if upper { format!("{:X}", data.len()) } else { format!("{:x}", data.len()) };
                let ext = if ext { ";name=\"v\"" } else { "" };
                [format!("{size}{ext}\r\n").into_bytes(), data, b"\r\n".to_vec()].concat()
            });
        let trailers = prop::collection::vec("x-[a-z]{1,5}: [a-z]{0,5}", 0..3);
        (prop::collection::vec(chunk, 0..5), trailers).prop_map(|(chunks, trailers)| {
            let tail: String = trailers.iter().map(|t| format!("{t}\r\n")).collect();
            [chunks.concat(), format!("0\r\n{tail}\r\n").into_bytes()].concat()
        })
    }

    proptest::proptest! {
        /// However a well-formed body is split, its end is found exactly.
        #[test]
        fn the_end_of_any_chunked_body_is_found_however_it_is_split(body in body(), step in 1usize..64) {
            let mut whole = body.clone();
            whole.extend_from_slice(b"GET / HTTP/1.1\r\n");
            proptest::prop_assert_eq!(end(&whole, step), Ok(Some(body.len())));
        }

        /// Any bytes at all: the verdict does not depend on the split, and
        /// an end found is within what came.
        #[test]
        fn any_bytes_get_one_verdict_however_they_are_split(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), step in 1usize..64) {
            let at_once = end(&bytes, bytes.len().max(1));
            proptest::prop_assert_eq!(&end(&bytes, step), &at_once);
            if let Ok(Some(n)) = at_once {
                proptest::prop_assert!(n <= bytes.len());
            }
        }
    }

    #[test]
    fn broken_framing_is_refused() {
        for bad in [&b"x\r\n"[..], b"\r\n", b"5\nhello", b"2\r\nabc\r\n", b"fffffffffffffffff\r\n", b"1;\n"] {
            assert_eq!(end(bad, 1), Err(Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
