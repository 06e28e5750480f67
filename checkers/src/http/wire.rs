//! Pure: HTTP/1.1 on the wire for the http(s) checker: the request line's
//! path (escaped, dot segments resolved), the request's bytes, and the
//! answer's head (status, Content-Length, chunked, Location) and chunked
//! body parsed from bytes already read. No I/O: `http.rs` reads.

use crate::line::quote;

/// The path and query as sent on the request line: a leading `/`, the
/// fragment dropped, and the bytes a URL escapes (space, quotes, angle
/// brackets, back quote, braces, anything not ASCII) percent-encoded, as
/// LWP and browsers send them.
pub(super) fn request_path(path: &str) -> String {
    let path = path.split('#').next().unwrap_or_default();
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for b in path.bytes() {
        if b <= b' ' || b >= 0x7f || b"\"<>`{}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A path with its `.` and `..` segments resolved (RFC 3986 5.2.4), as a
/// URL parser leaves it; the query is kept as it is.
pub(super) fn without_dot_segments(path: &str) -> String {
    let (p, query) = match path.find('?') {
        Some(i) => path.split_at(i),
        None => (path, ""),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = p.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}{query}", out.join("/"))
}

/// The request's bytes.
pub(super) fn build_request(method: &str, path: &str, host: &str) -> Box<[u8]> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsd\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
    .into_boxed_slice()
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// At the end of the connection.
    Eof,
}

/// The status line and headers of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) location: Option<String>,
    pub(super) framing: Framing,
    /// Where the body starts in the buffer parsed.
    pub(super) body_at: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    Head(Head),
    /// Not all of it has come yet.
    More,
    /// Not an HTTP answer, why.
    Bad(String),
}

/// Parses an answer's head from the start of `buf`.
pub(super) fn parse_head(buf: &[u8]) -> Parsed {
    // Early: a server that is not speaking HTTP is told at its first bytes.
    let prefix = &buf[..buf.len().min(5)];
    if !b"HTTP/"[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return Parsed::Bad(format!("not an HTTP answer: `{}`", first_line(buf)));
    }
    let Some((end, body_at)) = head_end(buf) else {
        return Parsed::More;
    };
    let text = &buf[..end];
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line {
        [b'H' | b'h', _, _, _, b'/', b'1', b'.', _, b' ', a, b, c, ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && status_line.get(12).is_none_or(|&b| b == b' ') =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Parsed::Bad(format!("not an HTTP answer: `{}`", first_line(buf))),
    };
    let mut location = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"location") {
            location = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Parsed::Bad(format!("bad Content-Length `{}`", quote(value))),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides (RFC 9112 6.3).
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Eof,
    };
    Parsed::Head(Head {
        status,
        location,
        framing,
        body_at,
    })
}

/// The end of the head (before its empty line) and where the body starts.
pub(super) fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl;
        let rest = &buf[at + 1..];
        if rest.starts_with(b"\n") {
            return Some((at, at + 2));
        }
        if rest.starts_with(b"\r\n") {
            return Some((at, at + 3));
        }
        i = at + 1;
    }
    None
}

/// The first line of what a server sent, for a reason.
pub(super) fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    quote(&line[..line.len().min(60)])
}

/// A chunked body being decoded.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    /// Bytes of the current chunk's data still to come.
    left: u64,
    /// The CRLF after a chunk's data is still to come.
    crlf: bool,
    /// The last chunk has come.
    pub(super) done: bool,
}

impl Chunks {
    /// Decodes what it can of `raw` into `body`; returns the bytes used.
    pub(super) fn decode(&mut self, raw: &[u8], body: &mut Vec<u8>) -> Result<usize, String> {
        let mut at = 0;
        while !self.done {
            if self.left > 0 {
                let take = (raw.len() - at).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                body.extend_from_slice(&raw[at..at + take]);
                at += take;
                self.left -= take as u64;
                if self.left > 0 {
                    return Ok(at);
                }
                self.crlf = true;
            }
            if self.crlf {
                match &raw[at..] {
                    [b'\r', b'\n', ..] => at += 2,
                    [b'\n', ..] => at += 1,
                    [] | [b'\r'] => return Ok(at),
                    _ => return Err("a chunk is longer than its size".to_owned()),
                }
                self.crlf = false;
            }
            let Some(nl) = raw[at..].iter().position(|&b| b == b'\n') else {
                if raw.len() - at > 1024 {
                    return Err("a chunk size line is longer than 1 KiB".to_owned());
                }
                return Ok(at);
            };
            let line = &raw[at..at + nl];
            let size = line
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad chunk size `{}`", quote(line)))?;
            at += nl + 1;
            if size == 0 {
                // Trailers are not read: the body is complete.
                self.done = true;
                return Ok(at);
            }
            self.left = size;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head {
        match parse_head(s.as_bytes()) {
            Parsed::Head(h) => h,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn heads_are_parsed_with_their_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nService Up");
        assert_eq!(
            (h.status, h.framing, h.body_at),
            (200, Framing::Length(10), 39)
        );
        let h = head("HTTP/1.0 503\nTransfer-Encoding: gzip, chunked\n\n");
        assert_eq!((h.status, h.framing), (503, Framing::Chunked));
        let h = head("http/1.1 302 Found\r\nlocation:  /x \r\n\r\n");
        assert_eq!((h.status, h.location.as_deref()), (302, Some("/x")));
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").framing, Framing::Eof);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Parsed::More
        );
        assert_eq!(parse_head(b"HT"), Parsed::More);
        assert!(matches!(parse_head(b"SSH-2.0-OpenSSH\r\n"), Parsed::Bad(_)));
        assert!(matches!(
            parse_head(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Parsed::Bad(_)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Bad(_)
        ));
    }

    #[test]
    fn chunks_decode_across_reads() {
        let wire = b"4\r\nServ\r\n6;x=y\r\nice Up\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut c = Chunks::default();
            let mut body = Vec::new();
            let mut raw = wire[..split].to_vec();
            let used = c
                .decode(&raw, &mut body)
                .unwrap_or_else(|e| panic!("{split}: {e}"));
            raw.drain(..used);
            raw.extend_from_slice(&wire[split..]);
            c.decode(&raw, &mut body)
                .unwrap_or_else(|e| panic!("second {split}: {e} {used}"));
            assert!(c.done, "split at {split}");
            assert_eq!(body, b"Service Up", "split at {split}");
        }
        let mut c = Chunks::default();
        assert!(c.decode(b"zz\r\n", &mut Vec::new()).is_err());
        assert!(c.decode(b"2\r\nabc\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn paths_are_escaped_as_a_url_would() {
        assert_eq!(request_path("health"), "/health");
        assert_eq!(request_path("/a b?q=\"x\"#frag"), "/a%20b?q=%22x%22");
        assert_eq!(request_path("/é"), "/%C3%A9");
    }
}
