//! heartbeat 3.0.6's own packets (tests/data/heartbeat, recorded in the
//! lab with auth 1 sha1 ha-lab-secret): every cluster message decodes, its
//! HMAC verifies, it re-encodes byte for byte; tampered and replayed copies
//! are refused. The ping-node echoes (ICMP payloads heartbeat signs as if
//! from the ping node) decode and verify too.
#![allow(clippy::unwrap_used)] // test data

use std::collections::HashMap;
use std::path::Path;

use lvsd::config::{AuthKey, AuthMethod};
use lvsd::failover::wire::{Freshness, ReplayGuard, WireError, open};

/// One captured packet's payload: UDP to or from port 694, or ICMP echo.
struct Packet {
    udp: bool,
    payload: Vec<u8>,
}

/// The UDP/694 and ICMP echo payloads of a little-endian pcap of Ethernet
/// frames carrying IPv4.
fn packets(path: &Path) -> Vec<Packet> {
    let d = std::fs::read(path).unwrap();
    assert_eq!(&d[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(d[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let len = u32::from_le_bytes(d[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &d[at + 16..at + 16 + len];
        at += 16 + len;
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
            continue; // not IPv4 (ARP)
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let body = &ip[ihl..total];
        match ip[9] {
            17 => {
                let (sport, dport) = (
                    u16::from_be_bytes([body[0], body[1]]),
                    u16::from_be_bytes([body[2], body[3]]),
                );
                if sport == 694 || dport == 694 {
                    out.push(Packet {
                        udp: true,
                        payload: body[8..].to_vec(),
                    });
                }
            }
            1 if body[0] == 8 || body[0] == 0 => out.push(Packet {
                udp: false,
                payload: body[8..].to_vec(),
            }),
            _ => {}
        }
    }
    out
}

fn lab_key() -> AuthKey {
    AuthKey {
        index: 1,
        method: AuthMethod::Sha1("ha-lab-secret".into()),
    }
}

fn capture() -> Vec<Packet> {
    packets(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/heartbeat/heartbeat-3.0.6-sample.pcap"),
    )
}

#[test]
fn every_message_decodes_verifies_and_reencodes_byte_for_byte() {
    let keys = [lab_key()];
    let (mut udp, mut icmp) = (0, 0);
    let mut types: HashMap<String, usize> = HashMap::new();
    for p in capture() {
        let m = open(&p.payload, &keys)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&p.payload)));
        assert_eq!(
            m.encode(&lab_key()).unwrap(),
            p.payload,
            "re-encoding {m:?}"
        );
        if p.udp {
            udp += 1;
            *types
                .entry(m.get("t").unwrap_or("?").to_owned())
                .or_default() += 1;
            assert!(m.get("src").is_some(), "{m:?}");
            assert_eq!(m.field("srcuuid").map(|f| f.value.len()), Some(16), "{m:?}");
        } else {
            icmp += 1;
            assert_eq!(m.get("t"), Some("NS_st"));
            assert_eq!(m.get("st"), Some("ping"));
        }
    }
    // The decoded sample lists 143 UDP messages.
    assert_eq!(udp, 143);
    assert!(icmp > 0);
    for t in [
        "status",
        "NS_ackmsg",
        "resource",
        "ask_resources",
        "starting",
        "num_ping_nodes",
        "you_are_dead",
        "abort_giveup",
        "stonith",
    ] {
        assert!(types.contains_key(t), "no t={t} in {types:?}");
    }
}

#[test]
fn tampered_and_foreign_messages_are_refused() {
    let keys = [lab_key()];
    for p in capture().iter().filter(|p| p.udp).take(40) {
        // Flip one bit in every field area byte position class.
        for pos in [4, p.payload.len() / 2, p.payload.len() - 60] {
            let mut bad = p.payload.clone();
            bad[pos] ^= 0x01;
            assert!(
                open(&bad, &keys).is_err(),
                "a bit flipped at {pos} was accepted"
            );
        }
        let other = AuthKey {
            index: 1,
            method: AuthMethod::Sha1("not-the-lab-secret".into()),
        };
        assert_eq!(open(&p.payload, &[other]), Err(WireError::BadDigest(1)));
        let md5 = AuthKey {
            index: 2,
            method: AuthMethod::Md5("ha-lab-secret".into()),
        };
        assert_eq!(open(&p.payload, &[md5]), Err(WireError::UnknownKey(1)));
    }
}

#[test]
fn replays_are_refused_and_restarts_seen() {
    let keys = [lab_key()];
    let mut guards: HashMap<String, ReplayGuard> = HashMap::new();
    let mut restarts = Vec::new();
    let mut seen = Vec::new();
    for p in capture().iter().filter(|p| p.udp) {
        let m = open(&p.payload, &keys).unwrap();
        let src = m.get("src").unwrap().to_owned();
        let g = guards.entry(src.clone()).or_default();
        match g.check(m.hex("hg").unwrap(), m.hex("seq")) {
            Freshness::New => {}
            Freshness::Restarted => restarts.push(src.clone()),
            Freshness::Replay => panic!("heartbeat's own message refused as a replay: {m:?}"),
        }
        seen.push((src, m));
    }
    // d1 was killed and started again within the capture.
    assert!(restarts.contains(&"d1".to_owned()), "{restarts:?}");
    // Every message sent again is a replay.
    for (src, m) in seen.iter().filter(|(_, m)| m.hex("seq").is_some()) {
        let g = guards.get_mut(src).unwrap();
        assert_eq!(
            g.check(m.hex("hg").unwrap(), m.hex("seq")),
            Freshness::Replay,
            "{m:?}"
        );
    }
}

#[test]
fn heartbeats_messages_mean_what_the_arbiter_needs() {
    use lvsd::failover::arbiter::{Hold, Input};
    use lvsd::failover::protocol::{Meaning, meaning};
    let keys = [lab_key()];
    let mut seen_by_d1 = Vec::new();
    let mut seen_by_d2 = Vec::new();
    let mut node_requests = Vec::new();
    for p in capture().iter().filter(|p| p.udp) {
        let m = open(&p.payload, &keys).unwrap();
        if let Meaning::Inputs(i) = meaning(&m, "d1", "d2") {
            seen_by_d1.extend(i);
        }
        match meaning(&m, "d2", "d1") {
            Meaning::Inputs(i) => seen_by_d2.extend(i),
            Meaning::NodesRequested(uuid) => node_requests.push(uuid),
            _ => {}
        }
    }
    // d1 restarted: it said `starting`, and asked d2 for the node list
    // (from its own UUID, which d2's answer must name).
    assert!(seen_by_d2.contains(&Input::PeerStarting));
    assert_eq!(
        node_requests,
        [Some([
            0xb9, 0x84, 0x3f, 0x05, 0x1c, 0x82, 0x45, 0x4f, 0x81, 0x80, 0xbf, 0x23, 0xd4, 0x5d,
            0x45, 0x79
        ])]
    );
    // ipfail on d2 told d1 it reaches more ping nodes, and later as many.
    assert!(seen_by_d1.contains(&Input::PeerPingCompared(std::cmp::Ordering::Greater)));
    assert!(seen_by_d2.contains(&Input::PeerPingCompared(std::cmp::Ordering::Equal)));
    let alive = Input::PeerAlive {
        deadtime: Some(std::time::Duration::from_millis(2000)),
    };
    // d2's auto_failback handed d1's set back (ask_resources foreign
    // me/other/done), and d2 agreed to ipfail's hand-over later.
    for want in [
        alive.clone(),
        Input::PeerHolds(Hold::All),
        Input::PeerPing(2),
        Input::PeerOffers {
            hold: Hold::Foreign,
            ipfail: false,
        },
        Input::PeerDone(Hold::Foreign),
        Input::PeerAccepts,
    ] {
        assert!(seen_by_d1.contains(&want), "d1 never got {want:?}");
    }
    // ipfail on d1 gave everything up (ask_resources rsc_hold=all info=me
    // from_id=ipfail), and d1 counted 0 ping nodes.
    for want in [
        alive,
        Input::PeerOffers {
            hold: Hold::All,
            ipfail: true,
        },
        Input::PeerAccepts,
        Input::PeerDone(Hold::All),
        Input::PeerPing(0),
        Input::PeerHolds(Hold::None),
    ] {
        assert!(seen_by_d2.contains(&want), "d2 never got {want:?}");
    }
}

#[test]
fn lvsds_status_is_read_back_as_heartbeat_reads_it() {
    use lvsd::failover::arbiter::Input;
    use lvsd::failover::protocol::{Identity, Meaning, Sender, meaning};
    let mut s = Sender::new(Identity {
        node: "d1".into(),
        uuid: [7; 16],
        generation: 0x6b02_7000,
        ttl: 5,
    });
    let bytes = s
        .status(
            std::time::Duration::from_millis(2000),
            0x6b02_70fa,
            "0.00 0.00 0.00 1/1 1",
        )
        .encode(&lab_key())
        .unwrap();
    let m = open(&bytes, &[lab_key()]).unwrap();
    assert_eq!(
        meaning(&m, "d2", "d1"),
        Meaning::Inputs(vec![Input::PeerAlive {
            deadtime: Some(std::time::Duration::from_millis(2000))
        }])
    );
    let mut g = ReplayGuard::default();
    assert_eq!(g.check(m.hex("hg").unwrap(), m.hex("seq")), Freshness::New);
}

/// lvsd's answers to heartbeat have the fields heartbeat's own have, in
/// the same order (the capture's repnodes, you_are_dead, starting).
#[test]
fn lvsds_answers_have_heartbeats_fields() {
    use lvsd::failover::protocol::{Identity, Sender};
    let keys = [lab_key()];
    let names = |m: &lvsd::failover::wire::Message| -> Vec<String> {
        m.fields
            .iter()
            .map(|f| f.name.clone())
            .filter(|n| n != "auth")
            .collect()
    };
    let theirs = |t: &str| {
        capture()
            .iter()
            .filter(|p| p.udp)
            .map(|p| open(&p.payload, &keys).unwrap())
            .find(|m| m.get("t") == Some(t))
            .unwrap_or_else(|| panic!("no {t} in the capture"))
    };
    let mut s = Sender::new(Identity {
        node: "d2".into(),
        uuid: [7; 16],
        generation: 0x6b02_6d76,
        ttl: 5,
    });
    let nodes = ["d1".to_owned(), "d2".to_owned()];
    let rep = s.repnodes("d1", Some([9; 16]), &nodes, 1, "l");
    let heartbeats = theirs("repnodes");
    assert_eq!(names(&rep), names(&heartbeats));
    for f in ["dest", "nodelist", "delnodelist"] {
        assert_eq!(rep.get(f), heartbeats.get(f), "{f}");
    }
    let dead = s.ping_answer("you_are_dead", "d1", 1, "l");
    let mut want = names(&theirs("you_are_dead"));
    // heartbeat's API library puts src after the client ids; the order of
    // fields means nothing to a reader.
    want.retain(|n| n != "src" && n != "destuuid");
    let mut got = names(&dead);
    got.retain(|n| n != "src");
    assert_eq!(got, want);
    assert_eq!(names(&s.starting(1, "l")), names(&theirs("starting")));
}
