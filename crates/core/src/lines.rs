//! Input files line by line, as users' files really are: a UTF-8 byte-order mark at
//! the start (Excel and Notepad write one), CRLF endings, and now and then a line in
//! another encoding. A line that is not UTF-8 is reported by its number and the rest
//! of the file goes on; only a failing read ends it.

use std::io::BufRead;

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not valid UTF-8 (first bad byte at column {column}); save the file as UTF-8")]
    NotUtf8 { column: usize },
    #[error("reading the file: {0}")]
    Read(#[from] std::io::Error),
}

/// The file without its byte-order mark, if it has one.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Non-blank lines, trimmed, with their 1-based numbers. After a read error the
/// iterator ends.
pub fn numbered_lines<R: BufRead>(reader: R) -> NumberedLines<R> {
    NumberedLines {
        reader,
        line: 0,
        buf: Vec::new(),
        done: false,
    }
}

pub struct NumberedLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for NumberedLines<R> {
    type Item = (usize, Result<String, LineError>);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let bytes = if self.line == 1 {
                        strip_bom(&self.buf)
                    } else {
                        &self.buf[..]
                    };
                    match std::str::from_utf8(bytes) {
                        Ok(s) if s.trim().is_empty() => continue,
                        Ok(s) => return Some((self.line, Ok(s.trim().to_owned()))),
                        Err(e) => {
                            return Some((
                                self.line,
                                Err(LineError::NotUtf8 {
                                    column: e.valid_up_to() + 1,
                                }),
                            ))
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some((self.line + 1, Err(LineError::Read(e))));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped_bad_lines_are_numbered_and_the_rest_goes_on() {
        let src: &[u8] = b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \nbad \xff\xfe line\n{\"b\":2}";
        let got: Vec<(usize, Result<String, String>)> = numbered_lines(src)
            .map(|(n, l)| (n, l.map_err(|e| e.to_string())))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Ok("{\"a\":1}".to_owned())),
                (
                    4,
                    Err(
                        "not valid UTF-8 (first bad byte at column 5); save the file as UTF-8"
                            .to_owned()
                    )
                ),
                (5, Ok("{\"b\":2}".to_owned())),
            ]
        );
        // A mark later in the file is content, not an encoding signature.
        let later: Vec<_> = numbered_lines(&b"x\n\xEF\xBB\xBFy\n"[..])
            .map(|(_, l)| l.unwrap())
            .collect();
        assert_eq!(later, ["x", "\u{feff}y"]);
        assert_eq!(strip_bom(b"\xEF\xBB\xBFa,b"), b"a,b");
    }
}
