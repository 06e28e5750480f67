//! Pure: heartbeat messages as the arbiter's inputs and outputs. Builds the
//! messages this node sends (fields in heartbeat's order) and reads the
//! peer's into [`Input`]s.
//!
//! What is read: `status` (the peer is alive; `dt` is the deadtime it asks
//! for, hex milliseconds; `st=dead` on an orderly shutdown), `resource`
//! (`rsc_hold`: what it holds), `num_ping_nodes` (ipfail's count), and
//! `ask_resources`, heartbeat's hand-over (`info=me`: the peer offers what
//! `rsc_hold` names — hb_standby, ipfail giving up, auto_failback handing
//! back; `other`: it agrees to take our offer; `done`), plus lvsd's own
//! `info=takeover`. Messages from this node itself (heard
//! back on a broadcast medium), for another node (`dest`), or from a node
//! that is not the peer are ignored, with the reason.
//!
//! Status messages are sent without `protocol`, which tells heartbeat not
//! to expect flow-control acknowledgements from this node
//! (shared/reference/heartbeat-3.0.6.md, "Interoperability probe").

use std::time::Duration;

use super::arbiter::{Hold, Input};
use super::wire::{FieldType, Message};

/// The status field that marks an lvsd node (its value: the version).
pub const LVSD_FIELD: &str = "lvsd";

/// Who this node is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `uname -n`, lowercased (`src`).
    pub node: String,
    /// The node's 16-byte UUID (`srcuuid`).
    pub uuid: [u8; 16],
    /// This run's generation (`hg`): higher than any earlier run's.
    pub generation: u64,
    /// `ttl`: 1 + the number of nodes, ping nodes included.
    pub ttl: u32,
}

/// Numbers the messages this node sends.
#[derive(Debug, Clone)]
pub struct Sender {
    id: Identity,
    seq: u64,
}

/// The common fields heartbeat appends to every cluster message.
fn common(m: &mut Message, id: &Identity, seq: Option<u64>, ts: u64, load: &str) {
    m.push(FieldType::String, "src", id.node.as_bytes());
    m.push(FieldType::Binary, "srcuuid", &id.uuid);
    if let Some(seq) = seq {
        m.push(FieldType::String, "seq", format!("{seq:x}").as_bytes());
    }
    m.push(
        FieldType::String,
        "hg",
        format!("{:x}", id.generation).as_bytes(),
    );
    m.push(FieldType::String, "ts", format!("{ts:x}").as_bytes());
    if seq.is_some() {
        m.push(FieldType::String, "ld", load.as_bytes());
    }
    m.push(FieldType::String, "ttl", id.ttl.to_string().as_bytes());
}

impl Sender {
    /// Starts numbering at 1.
    pub fn new(id: Identity) -> Sender {
        Sender { id, seq: 0 }
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A keepalive: `st` is `active`, which in heartbeat means a node that
    /// is fully up (its clients started), not one holding resources: a
    /// heartbeat peer waits for `active` before it manages resources with
    /// us. `deadtime` is what the peer should use for us.
    /// `ts` is the wall clock in seconds, `load` the /proc/loadavg line.
    /// It carries [`LVSD_FIELD`] (heartbeat ignores fields it does not
    /// know), so an lvsd peer knows it talks to lvsd.
    pub fn status(&mut self, deadtime: Duration, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[
            ("t", "status"),
            ("st", "active"),
            ("dt", &format!("{:x}", deadtime.as_millis())),
            (LVSD_FIELD, env!("CARGO_PKG_VERSION")),
        ]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// What this node holds now, settled (`isstable=1`, no `info`: the
    /// message heartbeat's peer and its ipfail wait for after a hand-over,
    /// hb_send_resources_held(TRUE, NULL)).
    pub fn resource(&mut self, hold: Hold, ts: u64, load: &str) -> Message {
        self.resource_message(hold, None, ts, load)
    }

    /// What this node holds while it gives a set away (`isstable=0
    /// info=standby`, as heartbeat's go_standby): not settled until the
    /// taker's `done`, after which [`Sender::resource`] follows.
    pub fn releasing(&mut self, hold: Hold, ts: u64, load: &str) -> Message {
        self.resource_message(hold, Some("standby"), ts, load)
    }

    fn resource_message(&mut self, hold: Hold, info: Option<&str>, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[
            ("t", "resource"),
            ("rsc_hold", hold.as_str()),
            ("rtype", "full"),
            ("isstable", if info.is_some() { "0" } else { "1" }),
        ]);
        if let Some(info) = info {
            m.push(FieldType::String, "info", info.as_bytes());
        }
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// This node is starting and holds nothing yet (heartbeat's
    /// `starting`, sent once when the peer is first heard): the peer
    /// answers with what it holds, and a heartbeat peer with
    /// auto_failback on hands back this node's resources.
    pub fn starting(&mut self, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[("t", "starting")]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// This node is stopping, having released everything (heartbeat's
    /// `status st=dead`): the peer takes over without waiting.
    pub fn leaving(&mut self, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[("t", "status"), ("st", "dead")]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// A hand-over message (`ask_resources`): `info` is `me` (this node
    /// offers `hold`), `other` (it agrees to take the peer's offer) or
    /// `done`. An offer ipfail's rule made carries ipfail's API ids, as
    /// heartbeat's ipfail sends it, so the peer can tell it from a standby.
    pub fn ask_resources(
        &mut self,
        hold: Hold,
        info: &str,
        ipfail: bool,
        ts: u64,
        load: &str,
    ) -> Message {
        let mut m = Message::of(&[
            ("t", "ask_resources"),
            ("rsc_hold", hold.as_str()),
            ("info", info),
        ]);
        if ipfail {
            for (k, v) in [
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ] {
                m.push(FieldType::String, k, v.as_bytes());
            }
        }
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// This node asks the peer for everything (`lvsd takeover`): an
    /// `ask_resources` with `rsc_hold=all info=takeover`, lvsd's own word
    /// (heartbeat's hb_takeover works through its local daemon instead).
    pub fn takeover(&mut self, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[
            ("t", "ask_resources"),
            ("rsc_hold", "all"),
            ("info", "takeover"),
        ]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// The answer to the peer's `reqnodes`: the cluster's node names
    /// (heartbeat writes each followed by a space), none deleted (written
    /// as heartbeat writes an empty list: one space).
    pub fn repnodes(
        &mut self,
        dest: &str,
        dest_uuid: Option<[u8; 16]>,
        nodes: &[String],
        ts: u64,
        load: &str,
    ) -> Message {
        let list: String = nodes.iter().map(|n| format!("{n} ")).collect();
        let mut m = Message::of(&[
            ("dest", dest),
            ("t", "repnodes"),
            ("nodelist", &list),
            ("delnodelist", " "),
        ]);
        if let Some(u) = dest_uuid {
            m.push(FieldType::Binary, "destuuid", &u);
        }
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// ipfail's answer to the peer's count (`you_are_dead` or
    /// `abort_giveup`), for `dest`, with ipfail's API ids.
    pub fn ping_answer(&mut self, t: &str, dest: &str, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[
            ("t", t),
            ("dest", dest),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }

    /// ipfail's count of ping nodes this node reaches, for `dest`.
    pub fn ping_count(&mut self, count: usize, dest: &str, ts: u64, load: &str) -> Message {
        let mut m = Message::of(&[
            ("t", "num_ping_nodes"),
            ("num_ping", &count.to_string()),
            ("dest", dest),
        ]);
        let seq = self.next();
        common(&mut m, &self.id, Some(seq), ts, load);
        m
    }
}

/// What a received message means to the arbiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// Inputs for the arbiter.
    Inputs(Vec<Input>),
    /// The peer shut down in order (`status st=dead`).
    PeerLeft,
    /// The peer asks for the node list (heartbeat's `reqnodes`, at its
    /// start): answer with [`Sender::repnodes`], to this UUID.
    NodesRequested(Option<[u8; 16]>),
    /// The peer's ipfail signed on (heartbeat's `hbapi-clstat st=join
    /// from_id=ipfail`): ipfail answers with its ping count
    /// (msg_ipfail_join), so the newcomer can compare.
    IpfailJoined,
    /// Nothing for the arbiter, and why (for debug logs).
    Ignored(String),
}

/// Reads one authenticated message from the wire, for node `me` whose
/// peer is `peer`.
pub fn meaning(m: &Message, me: &str, peer: &str) -> Meaning {
    let Some(src) = m.get("src") else {
        return Meaning::Ignored("no src".to_owned());
    };
    if src.eq_ignore_ascii_case(me) {
        return Meaning::Ignored("our own message".to_owned());
    }
    if !src.eq_ignore_ascii_case(peer) {
        return Meaning::Ignored(format!("from {src}, which is not the peer"));
    }
    if let Some(dest) = m.get("dest")
        && !dest.eq_ignore_ascii_case(me)
    {
        return Meaning::Ignored(format!("for {dest}"));
    }
    let t = m.get("t").unwrap_or("");
    match t {
        "status" => match m.get("st") {
            Some("dead") => Meaning::PeerLeft,
            _ => Meaning::Inputs(vec![Input::PeerAlive {
                deadtime: m.hex("dt").map(Duration::from_millis),
            }]),
        },
        "shutdone" => Meaning::PeerLeft,
        "reqnodes" => Meaning::NodesRequested(
            m.field("srcuuid")
                .and_then(|f| <[u8; 16]>::try_from(f.value.as_slice()).ok()),
        ),
        "starting" => Meaning::Inputs(vec![Input::PeerStarting]),
        "hbapi-clstat" if m.get("st") == Some("join") && m.get("from_id") == Some("ipfail") => {
            Meaning::IpfailJoined
        }
        // ipfail's answers to our count: the peer reaches more / as many.
        "you_are_dead" => {
            Meaning::Inputs(vec![Input::PeerPingCompared(std::cmp::Ordering::Greater)])
        }
        "abort_giveup" => Meaning::Inputs(vec![Input::PeerPingCompared(std::cmp::Ordering::Equal)]),
        "resource" => match m.get("rsc_hold").and_then(Hold::parse) {
            Some(h) => Meaning::Inputs(vec![Input::PeerHolds(h)]),
            None => Meaning::Ignored("a resource report without rsc_hold".to_owned()),
        },
        "num_ping_nodes" => match m.get("num_ping").and_then(|n| n.parse().ok()) {
            Some(n) => Meaning::Inputs(vec![Input::PeerPing(n)]),
            None => Meaning::Ignored("num_ping_nodes without a count".to_owned()),
        },
        "ask_resources" => {
            let Some(hold) = m.get("rsc_hold").and_then(Hold::parse) else {
                return Meaning::Ignored("ask_resources without rsc_hold".to_owned());
            };
            match m.get("info") {
                Some("me") => Meaning::Inputs(vec![Input::PeerOffers {
                    hold,
                    ipfail: m.get("from_id") == Some("ipfail"),
                }]),
                Some("other") => Meaning::Inputs(vec![Input::PeerAccepts]),
                Some("done") => Meaning::Inputs(vec![Input::PeerDone(hold)]),
                Some("takeover") if hold == Hold::All => {
                    Meaning::Inputs(vec![Input::PeerTakesOver])
                }
                other => Meaning::Ignored(format!(
                    "ask_resources with info={}",
                    other.unwrap_or("(none)")
                )),
            }
        }
        other => Meaning::Ignored(format!("t={other} is not used yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            node: "d1".into(),
            uuid: [0xb9; 16],
            generation: 0x6b02_6d7b,
            ttl: 5,
        }
    }

    #[test]
    fn status_has_heartbeats_field_order_without_protocol() {
        let mut s = Sender::new(id());
        let m = s.status(
            Duration::from_millis(2000),
            0x6b02_70fa,
            "0.10 0.05 0.01 1/99 42",
        );
        let names: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "t", "st", "dt", "lvsd", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"
            ]
        );
        assert_eq!(m.get("dt"), Some("7d0"));
        assert_eq!(m.get("seq"), Some("1"));
        assert_eq!(
            s.status(Duration::from_secs(2), 1, "").get("seq"),
            Some("2")
        );
    }

    #[test]
    fn the_peers_messages_mean() {
        let st = Message::of(&[
            ("t", "status"),
            ("st", "active"),
            ("dt", "7d0"),
            ("src", "d2"),
        ]);
        assert_eq!(
            meaning(&st, "d1", "d2"),
            Meaning::Inputs(vec![Input::PeerAlive {
                deadtime: Some(Duration::from_millis(2000))
            }])
        );
        let mine = Message::of(&[("t", "status"), ("src", "D1")]);
        assert!(matches!(meaning(&mine, "d1", "d2"), Meaning::Ignored(_)));
        let stranger = Message::of(&[("t", "status"), ("src", "d9")]);
        assert_eq!(
            meaning(&stranger, "d1", "d2"),
            Meaning::Ignored("from d9, which is not the peer".into())
        );
        let elsewhere = Message::of(&[
            ("t", "num_ping_nodes"),
            ("src", "d2"),
            ("num_ping", "1"),
            ("dest", "d3"),
        ]);
        assert!(matches!(
            meaning(&elsewhere, "d1", "d2"),
            Meaning::Ignored(_)
        ));
        let dead = Message::of(&[("t", "status"), ("st", "dead"), ("src", "d2")]);
        assert_eq!(meaning(&dead, "d1", "d2"), Meaning::PeerLeft);
        // As captured (tests/data/heartbeat-lab/scenario2.txt): the
        // peer's ipfail signs on; another client's sign-on is not ipfail's.
        let join = Message::of(&[
            ("t", "hbapi-clstat"),
            ("st", "join"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("src", "d2"),
            ("info", "signon"),
        ]);
        assert_eq!(meaning(&join, "d1", "d2"), Meaning::IpfailJoined);
        let other = Message::of(&[
            ("t", "hbapi-clstat"),
            ("st", "join"),
            ("from_id", "ccm"),
            ("src", "d2"),
        ]);
        assert!(matches!(meaning(&other, "d1", "d2"), Meaning::Ignored(_)));
    }
}
