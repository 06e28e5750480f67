//! Pure: heartbeat 3's cluster messages as they travel between directors
//! (shared/reference/heartbeat-3.0.6.md, "Wire protocol").
//!
//! ```text
//! ###\n
//! <len>:(<type>)<name>=<value>,      one netstring per field, in order
//! ...
//! %%%\n
//! <len>:<key index> <hex digest>,    the authentication netstring
//! ```
//!
//! The digest covers every byte from `###\n` through `%%%\n`: HMAC-SHA1 or
//! HMAC-MD5 with the authkeys secret (lowercase hex, two digits a byte), or
//! for `crc` the CRC-32/CKSUM of those bytes (`%lx`: no leading zeros).
//! Fields keep their bytes and order, so a decoded message re-encodes to
//! the same bytes. Decoding never panics: anything malformed, oversized,
//! unsigned or signed with another key is a [`WireError`].

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};

use crate::config::{AuthKey, AuthMethod};

/// The largest datagram accepted (and sent): heartbeat's messages are a
/// few hundred bytes; UDP cannot carry more than this.
pub const MAX_MESSAGE: usize = 65_507;

const START: &[u8] = b"###\n";
const END: &[u8] = b"%%%\n";

/// A field's type (`(T)` before its name), as heartbeat numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// 0: text.
    String,
    /// 1: raw bytes (the 16-byte UUIDs).
    Binary,
    /// 2: a nested message in the same encoding.
    Struct,
    /// 3: a list.
    List,
    /// 4: compressed.
    Compressed,
    /// 5: uncompressed.
    Uncompressed,
}

impl FieldType {
    fn of(digit: u8) -> Option<FieldType> {
        Some(match digit {
            b'0' => FieldType::String,
            b'1' => FieldType::Binary,
            b'2' => FieldType::Struct,
            b'3' => FieldType::List,
            b'4' => FieldType::Compressed,
            b'5' => FieldType::Uncompressed,
            _ => return None,
        })
    }

    fn digit(self) -> u8 {
        match self {
            FieldType::String => b'0',
            FieldType::Binary => b'1',
            FieldType::Struct => b'2',
            FieldType::List => b'3',
            FieldType::Compressed => b'4',
            FieldType::Uncompressed => b'5',
        }
    }
}

/// One `name=value` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its type.
    pub kind: FieldType,
    /// Its name.
    pub name: String,
    /// Its value, as sent.
    pub value: Vec<u8>,
}

/// A cluster message: its fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The fields, as sent.
    pub fields: Vec<Field>,
}

/// Why bytes are not a message lvsd accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Longer than [`MAX_MESSAGE`].
    #[error("{0} bytes, more than a message may have")]
    Oversized(usize),
    /// Not heartbeat's netstring framing.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Signed with a key index not in authkeys.
    #[error("signed with key {0}, which authkeys does not have")]
    UnknownKey(u8),
    /// The digest does not match (another secret, or altered on the way).
    #[error("authentication failed (key {0})")]
    BadDigest(u8),
}

fn malformed(s: impl Into<String>) -> WireError {
    WireError::Malformed(s.into())
}

/// Reads one netstring at `at`: returns its content and the offset after
/// its trailing comma.
fn netstring(buf: &[u8], at: usize) -> Result<(&[u8], usize), WireError> {
    let rest = &buf[at..];
    let colon = rest
        .iter()
        .take(7)
        .position(|b| *b == b':')
        .ok_or_else(|| malformed(format!("no netstring length at byte {at}")))?;
    let digits = &rest[..colon];
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && digits.len() > 1)
    {
        return Err(malformed(format!("bad netstring length at byte {at}")));
    }
    // At most 6 digits: cannot overflow.
    let len: usize = digits.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
    let start = colon + 1;
    let end = start
        .checked_add(len)
        .filter(|e| *e < rest.len())
        .ok_or_else(|| malformed(format!("netstring at byte {at} runs past the end")))?;
    if rest[end] != b',' {
        return Err(malformed(format!(
            "netstring at byte {at} does not end with a comma"
        )));
    }
    Ok((&rest[start..end], at + end + 1))
}

fn field(content: &[u8]) -> Result<Field, WireError> {
    let (kind, rest) = match content {
        [b'(', d, b')', rest @ ..] => (
            FieldType::of(*d)
                .ok_or_else(|| malformed(format!("unknown field type {}", char::from(*d))))?,
            rest,
        ),
        _ => return Err(malformed("a field without its (type)")),
    };
    let eq = rest
        .iter()
        .position(|b| *b == b'=')
        .ok_or_else(|| malformed("a field without `=`"))?;
    let name =
        std::str::from_utf8(&rest[..eq]).map_err(|_| malformed("a field name that is not text"))?;
    if name.is_empty() {
        return Err(malformed("a field without a name"));
    }
    Ok(Field {
        kind,
        name: name.to_owned(),
        value: rest[eq + 1..].to_vec(),
    })
}

/// A decoded datagram: the message, the key index it was signed with and
/// the signed part (for [`verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// The message.
    pub message: Message,
    /// `authidx`.
    pub key: u8,
    /// The digest as sent (hex).
    pub digest: &'a str,
    /// `###\n` through `%%%\n`.
    pub signed: &'a [u8],
}

/// Splits a datagram into its message and signature without checking the
/// signature (see [`open`]).
pub fn decode(buf: &[u8]) -> Result<Signed<'_>, WireError> {
    if buf.len() > MAX_MESSAGE {
        return Err(WireError::Oversized(buf.len()));
    }
    if !buf.starts_with(START) {
        return Err(malformed("does not start with ###"));
    }
    let mut at = START.len();
    let mut fields = Vec::new();
    while !buf[at..].starts_with(END) {
        if at >= buf.len() {
            return Err(malformed("no %%% end"));
        }
        let (content, next) = netstring(buf, at)?;
        fields.push(field(content)?);
        at = next;
    }
    let signed_end = at + END.len();
    let (auth, after) = netstring(buf, signed_end)?;
    if after != buf.len() {
        return Err(malformed(format!(
            "{} bytes after the signature",
            buf.len() - after
        )));
    }
    let auth = std::str::from_utf8(auth).map_err(|_| malformed("a signature that is not text"))?;
    let (idx, digest) = auth
        .split_once(' ')
        .ok_or_else(|| malformed("a signature without its key index"))?;
    let key = idx
        .parse::<u8>()
        .map_err(|_| malformed(format!("key index `{idx}`")))?;
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("a digest that is not hex"));
    }
    Ok(Signed {
        message: Message { fields },
        key,
        digest,
        signed: &buf[..signed_end],
    })
}

/// The digest of `data` under `method`, as heartbeat prints it.
pub fn digest(method: &AuthMethod, data: &[u8]) -> String {
    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
    match method {
        AuthMethod::Crc => {
            format!(
                "{:x}",
                crc::Crc::<u32>::new(&crc::CRC_32_CKSUM).checksum(data)
            )
        }
        AuthMethod::Md5(key) => {
            // Any key length is valid for HMAC.
            let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(key.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            m.update(data);
            hex(&m.finalize().into_bytes())
        }
        AuthMethod::Sha1(key) => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            m.update(data);
            hex(&m.finalize().into_bytes())
        }
    }
}

/// Decodes a datagram and checks its signature against authkeys (any of
/// its keys, as heartbeat accepts).
pub fn open(buf: &[u8], keys: &[AuthKey]) -> Result<Message, WireError> {
    let s = decode(buf)?;
    let key = keys
        .iter()
        .find(|k| k.index == s.key)
        .ok_or(WireError::UnknownKey(s.key))?;
    // Constant-time enough: both sides are hex of a digest; what leaks is
    // at most where a forged digest first differs.
    if digest(&key.method, s.signed).eq_ignore_ascii_case(s.digest) {
        Ok(s.message)
    } else {
        Err(WireError::BadDigest(s.key))
    }
}

impl Message {
    /// A message of text fields, in order.
    pub fn of(fields: &[(&str, &str)]) -> Message {
        Message {
            fields: fields
                .iter()
                .map(|(n, v)| Field {
                    kind: FieldType::String,
                    name: (*n).to_owned(),
                    value: v.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    /// The first field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The text of the first string field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name)
            .filter(|f| f.kind == FieldType::String)
            .and_then(|f| std::str::from_utf8(&f.value).ok())
    }

    /// A hex number field (`seq`, `hg`, `ts`, `dt`, ...).
    pub fn hex(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get(name)?, 16).ok()
    }

    /// Appends a field.
    pub fn push(&mut self, kind: FieldType, name: &str, value: &[u8]) {
        self.fields.push(Field {
            kind,
            name: name.to_owned(),
            value: value.to_vec(),
        });
    }

    /// The framed, signed datagram.
    pub fn encode(&self, key: &AuthKey) -> Result<Vec<u8>, WireError> {
        let mut out = START.to_vec();
        for f in &self.fields {
            let len = 3 + f.name.len() + 1 + f.value.len();
            out.extend_from_slice(format!("{len}:(").as_bytes());
            out.push(f.kind.digit());
            out.push(b')');
            out.extend_from_slice(f.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(&f.value);
            out.push(b',');
        }
        out.extend_from_slice(END);
        let auth = format!("{} {}", key.index, digest(&key.method, &out));
        out.extend_from_slice(format!("{}:{auth},", auth.len()).as_bytes());
        if out.len() > MAX_MESSAGE {
            return Err(WireError::Oversized(out.len()));
        }
        Ok(out)
    }
}

/// What the replay guard says of a message from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// New: accept it.
    New,
    /// The peer restarted (a higher generation): accept it, and know that
    /// the peer's state starts over.
    Restarted,
    /// Already seen, or from an older generation: drop it.
    Replay,
}

/// Heartbeat's replay rules for one peer: a generation (`hg`) lower than
/// one already seen is a replay; within a generation, sequence numbers
/// (`seq`) already seen are dropped. Messages without `seq` (the `NS_*`
/// control messages) are checked on their generation only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayGuard {
    generation: Option<u64>,
    /// The highest seq seen in this generation.
    last: Option<u64>,
    /// Seqs below `last` not seen yet (a gap: retransmits may fill it).
    missing: Vec<u64>,
}

/// How many missing sequence numbers one peer may leave open (heartbeat
/// keeps 500 messages for retransmission).
const MAX_MISSING: usize = 500;

impl ReplayGuard {
    /// Judges one message's `hg` and `seq` and records it.
    pub fn check(&mut self, generation: u64, seq: Option<u64>) -> Freshness {
        let restarted = match self.generation {
            Some(g) if generation < g => return Freshness::Replay,
            Some(g) if generation == g => false,
            Some(_) => true,
            None => false,
        };
        if restarted || self.generation.is_none() {
            self.generation = Some(generation);
            self.last = None;
            self.missing.clear();
        }
        let fresh = if restarted {
            Freshness::Restarted
        } else {
            Freshness::New
        };
        let Some(seq) = seq else { return fresh };
        match self.last {
            None => {
                self.last = Some(seq);
                fresh
            }
            Some(last) if seq > last => {
                // Remember the gap (bounded) so late retransmits are taken once.
                let gap = (last + 1..seq).take(MAX_MISSING);
                self.missing.extend(gap);
                if self.missing.len() > MAX_MISSING {
                    let drop = self.missing.len() - MAX_MISSING;
                    self.missing.drain(..drop);
                }
                self.last = Some(seq);
                fresh
            }
            Some(_) => match self.missing.iter().position(|m| *m == seq) {
                Some(i) => {
                    self.missing.remove(i);
                    fresh
                }
                None => Freshness::Replay,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1_key() -> AuthKey {
        AuthKey {
            index: 1,
            method: AuthMethod::Sha1("ha-lab-secret".into()),
        }
    }

    #[test]
    fn hmac_and_crc_vectors() {
        // RFC 2202 test case 2 for both HMACs; CRC-32/CKSUM's check value.
        assert_eq!(
            digest(
                &AuthMethod::Sha1("Jefe".into()),
                b"what do ya want for nothing?"
            ),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            digest(
                &AuthMethod::Md5("Jefe".into()),
                b"what do ya want for nothing?"
            ),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(digest(&AuthMethod::Crc, b"123456789"), "765e7680");
    }

    #[test]
    fn encode_then_open_round_trips_and_tampering_is_caught() {
        let mut m = Message::of(&[("t", "status"), ("st", "up"), ("src", "d1")]);
        m.push(FieldType::Binary, "srcuuid", &[0, 1, b',', b'=', 0xff]);
        for key in [
            sha1_key(),
            AuthKey {
                index: 2,
                method: AuthMethod::Md5("k".into()),
            },
            AuthKey {
                index: 3,
                method: AuthMethod::Crc,
            },
        ] {
            let bytes = m.encode(&key).unwrap();
            let keys = [key.clone()];
            assert_eq!(open(&bytes, &keys).unwrap(), m);
            let mut bad = bytes.clone();
            bad[8] ^= 1;
            assert!(matches!(
                open(&bad, &keys),
                Err(WireError::BadDigest(_) | WireError::Malformed(_))
            ));
            let other = AuthKey {
                index: key.index,
                method: AuthMethod::Sha1("other".into()),
            };
            assert_eq!(open(&bytes, &[other]), Err(WireError::BadDigest(key.index)));
            assert_eq!(open(&bytes, &[]), Err(WireError::UnknownKey(key.index)));
        }
    }

    #[test]
    fn malformed_framing_is_refused() {
        let good = Message::of(&[("t", "status")]).encode(&sha1_key()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello".to_vec(), "does not start"),
            (b"###\n".to_vec(), "no"),
            (b"###\n11:(0)t=status%%%\n".to_vec(), "comma"),
            (b"###\n99:(0)t=status,%%%\n".to_vec(), "past the end"),
            (b"###\n6:(9)t=x,%%%\n2:1 ,".to_vec(), "field type"),
            (b"###\n4:(0)t,%%%\n".to_vec(), "`=`"),
            (
                [good.clone(), b"x".to_vec()].concat(),
                "after the signature",
            ),
            (b"###\n01:(0)t=s,%%%\n".to_vec(), "length"),
        ];
        for (bytes, want) in cases {
            let e = decode(&bytes).unwrap_err().to_string();
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(&bytes)
            );
        }
        assert_eq!(
            decode(&vec![b'#'; MAX_MESSAGE + 1]),
            Err(WireError::Oversized(MAX_MESSAGE + 1))
        );
    }

    #[test]
    fn replay_rules() {
        let mut g = ReplayGuard::default();
        assert_eq!(g.check(10, Some(1)), Freshness::New);
        assert_eq!(g.check(10, Some(2)), Freshness::New);
        assert_eq!(
            g.check(10, Some(2)),
            Freshness::Replay,
            "the same seq twice"
        );
        assert_eq!(g.check(10, Some(5)), Freshness::New, "a gap is accepted");
        assert_eq!(
            g.check(10, Some(4)),
            Freshness::New,
            "a retransmit fills it once"
        );
        assert_eq!(g.check(10, Some(4)), Freshness::Replay);
        assert_eq!(
            g.check(10, None),
            Freshness::New,
            "NS_* messages carry no seq"
        );
        assert_eq!(
            g.check(9, Some(100)),
            Freshness::Replay,
            "an older generation"
        );
        assert_eq!(
            g.check(11, Some(1)),
            Freshness::Restarted,
            "a restart starts seq over"
        );
        assert_eq!(g.check(11, Some(1)), Freshness::Replay);
        assert_eq!(g.check(10, Some(6)), Freshness::Replay);
    }

    proptest::proptest! {
        /// No input makes decoding panic.
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = decode(&bytes);
            let _ = open(&bytes, &[sha1_key()]);
        }

        /// Bytes built from the framing's own vocabulary, too.
        #[test]
        fn decoding_framing_words_never_panics(parts in proptest::collection::vec(
            proptest::sample::select(vec!["###\n", "%%%\n", "7:", "(0)", "t=status", ",", "1 ", "abc", ":", "0:", "999999:"]),
            0..20,
        )) {
            let bytes = parts.concat();
            let _ = decode(bytes.as_bytes());
        }
    }
}
