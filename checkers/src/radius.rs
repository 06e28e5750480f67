//! `service=radius`: one Access-Request (RFC 2865) with `login`, `passwd`
//! and the shared `secret`, as ldirectord's Authen::Radius `check_pwd`.
//!
//! ldirectord's rule: any answer from the server counts (an Access-Reject
//! too: the server is alive and knows the secret). lvsd also checks the
//! answer's Response Authenticator, so a reply made with another secret,
//! or garbage, is a failure; a server that stays silent (which is what a
//! RADIUS server does for an unknown client or a wrong secret) runs into
//! the deadline. The request carries a Message-Authenticator (RFC 3579),
//! which servers hardened against BlastRADIUS may require.

use std::net::{IpAddr, SocketAddr};

use md5::{Digest, Md5};

use crate::{Login, ProbeError, Step, io_reason};

const ACCESS_REQUEST: u8 = 1;
const ACCESS_ACCEPT: u8 = 2;
const ACCESS_REJECT: u8 = 3;
const ACCESS_CHALLENGE: u8 = 11;
const USER_NAME: u8 = 1;
const USER_PASSWORD: u8 = 2;
const NAS_IDENTIFIER: u8 = 32;
const MESSAGE_AUTHENTICATOR: u8 = 80;

/// A RADIUS check of one real.
#[derive(Clone)]
pub struct Radius {
    addr: SocketAddr,
    login: Login,
    secret: Vec<u8>,
    subject: String,
}

impl std::fmt::Debug for Radius {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Radius")
            .field("addr", &self.addr)
            .field("login", &self.login)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-MD5 (RFC 2104) of `msg` under `key`.
fn hmac_md5(key: &[u8], msg: &[u8]) -> [u8; 16] {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length (a long one is hashed first).
    let mut m = <hmac::Hmac<Md5> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// User-Password hidden as RFC 2865 §5.2 says.
fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = password.to_vec();
    let len = padded.len().clamp(1, 128).next_multiple_of(16);
    padded.resize(len, 0);
    let mut out = Vec::with_capacity(len);
    let mut prev: Vec<u8> = authenticator.to_vec();
    for chunk in padded.chunks(16) {
        let b = md5(&[secret, &prev]);
        let c: Vec<u8> = chunk.iter().zip(b).map(|(p, k)| p ^ k).collect();
        out.extend_from_slice(&c);
        prev = c;
    }
    out
}

fn attribute(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Values are at most 253 bytes; the caller's are shorter.
    let len = value.len().min(253);
    out.push(kind);
    out.push((len + 2) as u8);
    out.extend_from_slice(&value[..len]);
}

impl Radius {
    /// Checks the RADIUS server at `addr:port` with `login` and `secret`.
    pub fn new(addr: IpAddr, port: u16, login: Login, secret: &str) -> Radius {
        let addr = SocketAddr::new(addr, port);
        Radius {
            addr,
            subject: format!("radius {} @{addr}", login.user),
            login,
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    /// The Access-Request with identifier `id` and request authenticator `ra`.
    fn request(&self, id: u8, ra: &[u8; 16]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attribute(&mut attrs, USER_NAME, self.login.user.as_bytes());
        attribute(
            &mut attrs,
            USER_PASSWORD,
            &hide_password(self.login.password.as_bytes(), &self.secret, ra),
        );
        attribute(&mut attrs, NAS_IDENTIFIER, b"lvsd");
        let ma_at = attrs.len() + 2;
        attribute(&mut attrs, MESSAGE_AUTHENTICATOR, &[0; 16]);
        let len = 20 + attrs.len();
        let mut pkt = vec![ACCESS_REQUEST, id];
        pkt.extend_from_slice(&(len as u16).to_be_bytes());
        pkt.extend_from_slice(ra);
        pkt.extend_from_slice(&attrs);
        let mac = hmac_md5(&self.secret, &pkt);
        pkt[20 + ma_at..20 + ma_at + 16].copy_from_slice(&mac);
        pkt
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let id: u8 = rand::random();
        let ra: [u8; 16] = rand::random();
        let pkt = self.request(id, &ra);
        let io = |e: std::io::Error| self.fail(crate::io_step(Step::Connect, &e), io_reason(&e));
        let sock = crate::connected_udp(self.addr).await.map_err(io)?;
        sock.send(&pkt).await.map_err(io)?;
        let mut buf = vec![0; 4096];
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            let reply = &buf[..n];
            if reply.len() >= 2 && reply[1] != id {
                continue; // an answer to someone else's request
            }
            return self.judge(reply, &ra);
        }
    }

    /// ldirectord's rule on a verified answer: Accept, Reject or Challenge
    /// all mean the server is up.
    fn judge(&self, reply: &[u8], ra: &[u8; 16]) -> Result<(), ProbeError> {
        if reply.len() < 20 {
            return Err(self.fail(Step::Answer, format!("a {}-byte answer", reply.len())));
        }
        let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
        if len < 20 || len > reply.len() {
            return Err(self.fail(
                Step::Answer,
                format!("answer length field {len}, {} bytes came", reply.len()),
            ));
        }
        let reply = &reply[..len];
        let want = md5(&[&reply[..4], ra, &reply[20..], &self.secret]);
        if reply[4..20] != want {
            return Err(self.fail(
                Step::Answer,
                "the answer's authenticator does not match (another secret?)",
            ));
        }
        match reply[0] {
            ACCESS_ACCEPT | ACCESS_REJECT | ACCESS_CHALLENGE => Ok(()),
            code => Err(self.fail(
                Step::Answer,
                format!("answer code {code}, not Accept, Reject or Challenge"),
            )),
        }
    }
}

checker_via_run!(Radius);

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2202's HMAC-MD5 test vectors 1 and 2.
    #[test]
    fn hmac_md5_vectors() {
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_md5(&[0x0b; 16], b"Hi There")),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
        assert_eq!(
            hex(hmac_md5(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    /// Hiding then un-hiding gives the password back (RFC 2865 §5.2).
    #[test]
    fn password_hiding_round_trips() {
        let ra = [7u8; 16];
        let hidden = hide_password(b"a password longer than sixteen", b"s3", &ra);
        assert_eq!(hidden.len(), 32);
        let mut prev = ra.to_vec();
        let mut clear = Vec::new();
        for c in hidden.chunks(16) {
            let b = md5(&[b"s3", &prev]);
            clear.extend(c.iter().zip(b).map(|(x, k)| x ^ k));
            prev = c.to_vec();
        }
        assert_eq!(&clear[..30], b"a password longer than sixteen");
    }
}
