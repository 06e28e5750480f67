//! The real kernel: the "IPVS" generic netlink family over a
//! `NETLINK_GENERIC` socket (the only place, with `failover/vip.rs`, that
//! opens netlink).
//!
//! A request: send, then read until the kernel's ACK (or, for a dump,
//! `NLMSG_DONE`), checking sequence numbers. Changes go in batches
//! ([`Kernel::apply_all`]): up to [`BATCH`] requests in one `sendmsg`, each
//! with its own sequence number and ACK, every ACK read back and a failure
//! named by its op. The kernel answers synchronously, so the socket is a
//! plain blocking one; no call waits on anything but the kernel itself,
//! and the daemon (on its own thread, not a runtime worker) makes them.

use std::num::NonZeroI32;

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, ParseableParametrized,
};
use netlink_packet_generic::constants::GENL_ID_CTRL;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use super::table::{Counters, SyncDaemon, SyncRole, Timeouts};
use super::wire::{
    CmdAttr, IPVS_GENL_NAME, IpvsMessage, counters_of, destination_of, service_of, sync_daemon_of,
    timeouts_of,
};
use super::{Destination, Kernel, KernelError, Op, ServiceKey, Table};

/// Each destination's counters, by service.
pub type CounterRows = Vec<(ServiceKey, Destination, Counters)>;

/// The kernel's IPVS table through generic netlink.
#[derive(Debug)]
pub struct NetlinkKernel {
    sock: Socket,
    family: u16,
    seq: u32,
}

/// `errno` as words, without Rust's "(os error N)".
fn errno_text(code: i32) -> String {
    let s = std::io::Error::from_raw_os_error(code).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// What an exchange with the kernel failed on.
#[derive(Debug)]
enum Failure {
    /// The kernel answered with this errno (positive).
    Errno(i32),
    /// The socket failed.
    Io(std::io::Error),
    /// The answer could not be read.
    Decode(String),
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Errno(e) => errno_text(*e),
            Failure::Io(e) => e.to_string(),
            Failure::Decode(e) => format!("unreadable answer: {e}"),
        }
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Failure {
        Failure::Decode(e.to_string())
    }
}

/// The netlink messages of one datagram, in order.
fn messages<F>(data: &[u8]) -> Result<Vec<NetlinkMessage<GenlMessage<F>>>, Failure>
where
    F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = NetlinkBuffer::new_checked(&data[at..])?.length() as usize;
        if len == 0 || at + len > data.len() {
            return Err(Failure::Decode(format!(
                "message length {len} at offset {at}"
            )));
        }
        out.push(NetlinkMessage::<GenlMessage<F>>::deserialize(
            &data[at..at + len],
        )?);
        at += len.next_multiple_of(4);
    }
    Ok(out)
}

fn exchange<F>(sock: &Socket, seq: u32, family: u16, msg: F, dump: bool) -> Result<Vec<F>, Failure>
where
    F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
{
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(family);
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(genl));
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | if dump { NLM_F_DUMP } else { 0 };
    nl.header.sequence_number = seq;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    sock.send(&buf, 0).map_err(Failure::Io)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = sock.recv_from_full().map_err(Failure::Io)?;
        for m in messages::<F>(&data)? {
            if m.header.sequence_number != seq {
                continue; // an answer to an earlier, abandoned request
            }
            match m.payload {
                NetlinkPayload::InnerMessage(g) => out.push(g.payload),
                NetlinkPayload::Error(e) => match e.code.map(NonZeroI32::get) {
                    None if !dump => return Ok(out),
                    None => {}
                    Some(code) => return Err(Failure::Errno(-code)),
                },
                NetlinkPayload::Done(_) => return Ok(out),
                _ => {}
            }
        }
    }
}

/// Requests sent in one `sendmsg` (about 100 bytes each; their ACKs fit
/// the socket's default receive buffer many times over).
pub const BATCH: usize = 256;

/// Sends `msgs` as one buffer, with sequence numbers `first`, `first + 1`,
/// ..., each asking for an ACK, and reads until every one is answered: one
/// result per message, in order.
fn exchange_batch<F>(
    sock: &Socket,
    first: u32,
    family: u16,
    msgs: Vec<F>,
) -> Result<Vec<Result<(), Failure>>, Failure>
where
    F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
{
    let n = msgs.len();
    let mut buf = Vec::new();
    for (i, msg) in msgs.into_iter().enumerate() {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(family);
        let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(genl));
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        nl.header.sequence_number = first.wrapping_add(i as u32);
        nl.finalize();
        let at = buf.len();
        // Each message starts on a 4-byte boundary (NLMSG_ALIGN).
        buf.resize(at + nl.buffer_len().next_multiple_of(4), 0);
        nl.serialize(&mut buf[at..at + nl.buffer_len()]);
    }
    sock.send(&buf, 0).map_err(Failure::Io)?;
    let mut out: Vec<Option<Result<(), Failure>>> = (0..n).map(|_| None).collect();
    let mut left = n;
    while left > 0 {
        let (data, _) = sock.recv_from_full().map_err(Failure::Io)?;
        for m in messages::<F>(&data)? {
            let i = m.header.sequence_number.wrapping_sub(first) as usize;
            let Some(slot) = out.get_mut(i).filter(|s| s.is_none()) else {
                continue; // an answer to an earlier, abandoned request
            };
            if let NetlinkPayload::Error(e) = m.payload {
                *slot = Some(match e.code.map(NonZeroI32::get) {
                    None => Ok(()),
                    Some(code) => Err(Failure::Errno(-code)),
                });
                left -= 1;
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or(Err(Failure::Decode("no answer".to_owned()))))
        .collect())
}

/// The IPVS family's id as the kernel names it now (None: it named none).
fn family_id(sock: &Socket, seq: u32) -> Result<Option<u16>, Failure> {
    let ask = GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(IPVS_GENL_NAME.to_owned())],
    };
    Ok(exchange(sock, seq, GENL_ID_CTRL, ask, false)?
        .iter()
        .flat_map(|r| &r.nlas)
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        }))
}

impl NetlinkKernel {
    /// Opens the socket and finds the IPVS family. The errors say what to
    /// do: load the module, or run with CAP_NET_ADMIN.
    pub fn open() -> Result<NetlinkKernel, KernelError> {
        let unavailable = |e: String| KernelError::Unavailable(e);
        let mut sock = Socket::new(NETLINK_GENERIC)
            .map_err(|e| unavailable(format!("cannot open a generic netlink socket: {e}")))?;
        sock.bind_auto()
            .map_err(|e| unavailable(format!("cannot bind the netlink socket: {e}")))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| unavailable(format!("cannot connect the netlink socket: {e}")))?;
        let family = match family_id(&sock, 1) {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(unavailable("the kernel named no IPVS family id".to_owned()));
            }
            Err(Failure::Errno(2)) => {
                return Err(unavailable(
                    "the kernel has no IPVS (ip_vs module not loaded: modprobe ip_vs)".to_owned(),
                ));
            }
            Err(e) => {
                return Err(unavailable(format!(
                    "looking up the IPVS family: {}",
                    e.text()
                )));
            }
        };
        Ok(NetlinkKernel {
            sock,
            family,
            seq: 1,
        })
    }

    fn request(&mut self, msg: IpvsMessage, dump: bool) -> Result<Vec<IpvsMessage>, Failure> {
        self.seq = self.seq.wrapping_add(1);
        match exchange(&self.sock, self.seq, self.family, msg.clone(), dump) {
            // ENOENT: perhaps ip_vs was unloaded and loaded again, and the
            // kernel gave the family a new id: looked up again, and the
            // request made once more under it.
            Err(Failure::Errno(2)) if self.family_moved() => {
                self.seq = self.seq.wrapping_add(1);
                exchange(&self.sock, self.seq, self.family, msg, dump)
            }
            other => other,
        }
    }

    /// After an ENOENT: whether the IPVS family has a new id (ip_vs was
    /// loaded again), now taken.
    fn family_moved(&mut self) -> bool {
        self.seq = self.seq.wrapping_add(1);
        match family_id(&self.sock, self.seq) {
            Ok(Some(id)) if id != self.family => {
                tracing::warn!(
                    "the IPVS netlink family changed id ({} -> {id}): ip_vs was loaded again",
                    self.family
                );
                self.family = id;
                true
            }
            _ => false,
        }
    }

    /// One batch of change requests (at most [`BATCH`]); like
    /// [`NetlinkKernel::request`], an ENOENT looks the family up again and,
    /// when its id changed, sends the batch once more under it.
    fn batch(&mut self, msgs: Vec<IpvsMessage>) -> Result<Vec<Result<(), Failure>>, Failure> {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(msgs.len() as u32);
        let results = exchange_batch(&self.sock, first, self.family, msgs.clone())?;
        if !results.iter().any(|r| matches!(r, Err(Failure::Errno(2)))) || !self.family_moved() {
            return Ok(results);
        }
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(msgs.len() as u32);
        exchange_batch(&self.sock, first, self.family, msgs)
    }

    fn read_table(&mut self) -> Result<(Table, CounterRows), Failure> {
        let mut services = Vec::new();
        let mut counters = Vec::new();
        for reply in self.request(IpvsMessage::get_services(), true)? {
            for a in &reply.attrs {
                let CmdAttr::Service(attrs) = a else { continue };
                let svc = service_of(attrs)?;
                let ipv6 = matches!(
                    svc.key,
                    super::ServiceKey::Addr {
                        addr: core::net::IpAddr::V6(_),
                        ..
                    } | super::ServiceKey::Fwmark { ipv6: true, .. }
                );
                let mut dests = Vec::new();
                for d in self.request(IpvsMessage::get_dests(&svc.key), true)? {
                    for a in &d.attrs {
                        if let CmdAttr::Dest(attrs) = a {
                            let dest = destination_of(attrs, ipv6)?;
                            counters.push((svc.key, dest.clone(), counters_of(attrs)));
                            dests.push(dest);
                        }
                    }
                }
                services.push((svc, dests));
            }
        }
        Ok((Table { services }, counters))
    }

    /// A request that changes something, its failure named as `what`.
    fn change(
        &mut self,
        msg: IpvsMessage,
        what: impl FnOnce() -> String,
    ) -> Result<(), KernelError> {
        let reason = match self.request(msg, false) {
            Ok(_) => return Ok(()),
            Err(Failure::Errno(1)) => {
                "operation not permitted (lvsd needs CAP_NET_ADMIN)".to_owned()
            }
            Err(e) => e.text(),
        };
        Err(KernelError::Op { op: what(), reason })
    }

    /// Every destination's connection and traffic counters.
    pub fn counters(&mut self) -> Result<CounterRows, KernelError> {
        self.read_table()
            .map(|(_, c)| c)
            .map_err(|e| KernelError::Dump(e.text()))
    }

    /// The running connection sync daemons (at most a master and a backup).
    pub fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        let replies = self
            .request(IpvsMessage::get_daemons(), true)
            .map_err(|e| KernelError::Dump(format!("sync daemons: {}", e.text())))?;
        let mut out = Vec::new();
        for r in &replies {
            for a in &r.attrs {
                if let CmdAttr::Daemon(attrs) = a {
                    out.push(
                        sync_daemon_of(attrs)
                            .map_err(|e| KernelError::Dump(format!("sync daemons: {e}")))?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Starts a connection sync daemon (`ipvsadm --start-daemon`).
    pub fn start_sync_daemon(&mut self, d: &SyncDaemon) -> Result<(), KernelError> {
        self.change(IpvsMessage::new_daemon(d), || format!("ipvsadm {d}"))
    }

    /// Stops the sync daemon of `role` (`ipvsadm --stop-daemon`).
    pub fn stop_sync_daemon(&mut self, role: SyncRole) -> Result<(), KernelError> {
        self.change(IpvsMessage::del_daemon(role), || {
            format!("ipvsadm --stop-daemon {}", role.as_str())
        })
    }

    /// The connection timeouts (`ipvsadm -L --timeout`).
    pub fn timeouts(&mut self) -> Result<Timeouts, KernelError> {
        let replies = self
            .request(IpvsMessage::get_config(), false)
            .map_err(|e| KernelError::Dump(format!("timeouts: {}", e.text())))?;
        let attrs: Vec<CmdAttr> = replies.into_iter().flat_map(|r| r.attrs).collect();
        Ok(timeouts_of(&attrs))
    }

    /// Sets the connection timeouts (`ipvsadm --set`; 0 leaves one as it is).
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), KernelError> {
        self.change(IpvsMessage::set_config(t), || {
            format!("ipvsadm --set {} {} {}", t.tcp, t.tcp_fin, t.udp)
        })
    }
}

impl Kernel for NetlinkKernel {
    async fn dump(&mut self) -> Result<Table, KernelError> {
        self.read_table()
            .map(|(t, _)| t)
            .map_err(|e| KernelError::Dump(e.text()))
    }

    async fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        self.change(IpvsMessage::of_op(op), || op.to_string())
    }

    async fn apply_all(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let mut out = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(BATCH) {
            let msgs = chunk.iter().map(IpvsMessage::of_op).collect();
            match self.batch(msgs) {
                Ok(results) => {
                    for (op, r) in chunk.iter().zip(results) {
                        out.push(r.map_err(|e| KernelError::Op {
                            op: op.to_string(),
                            reason: match e {
                                Failure::Errno(1) => {
                                    "operation not permitted (lvsd needs CAP_NET_ADMIN)".to_owned()
                                }
                                e => e.text(),
                            },
                        }));
                    }
                }
                // The socket or an answer failed: every op of the batch
                // is unknown; said as failed (the daemon then re-reads
                // the table).
                Err(e) => {
                    let reason = e.text();
                    out.extend(chunk.iter().map(|op| {
                        Err(KernelError::Op {
                            op: op.to_string(),
                            reason: reason.clone(),
                        })
                    }));
                }
            }
        }
        out
    }

    async fn counters(&mut self) -> Result<CounterRows, KernelError> {
        NetlinkKernel::counters(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a kernel without IPVS (these machines; the VM tests cover the
    /// other case) opening says what to do.
    #[test]
    fn a_kernel_without_ipvs_is_named_with_the_fix() {
        if std::path::Path::new("/proc/net/ip_vs").exists() {
            // IPVS is loaded here (no process can hide it from itself):
            // said, not failed; the VM tests exercise this kernel.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIP a_kernel_without_ipvs_is_named_with_the_fix: this kernel has IPVS\n",
            );
            return;
        }
        let e = NetlinkKernel::open().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the kernel has no IPVS (ip_vs module not loaded: modprobe ip_vs)"
        );
    }
}
