//! Pure: what to mail, and when. Time comes in as a [`Duration`] since
//! the mailer started (monotonic), wall time only inside notices.
//!
//! - A change is told once: a notice that repeats the subject's last state
//!   (down again, with another reason) is dropped.
//! - Per recipient (server, from, to), changes wait [`GATHER`] so that a
//!   burst (a switch dies, 40 reals go down in 3 s) is one mail listing
//!   every change; after a mail the next waits until [`WINDOW`] has
//!   passed, and no more than [`CAP_PER_HOUR`] go out an hour. Held
//!   changes are not lost: they wait for the next mail (above
//!   [`MAX_LINES`] a mail lists the first and counts the rest).
//! - `emailalertfreq` > 0: while a real stays down, a reminder line joins
//!   the recipient's next mail every that many seconds (ldirectord's
//!   "Inaccessible real server", coalesced like the rest).
//! - `emailalertstatus`: a change in a daemon state it does not list is
//!   not mailed (but still counts as told).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::{Change, DaemonState, Notice};
use crate::config::Alerts;

/// How long the first change of a burst waits for the rest (at most the
/// window).
pub const GATHER: Duration = Duration::from_secs(5);
/// The least time between two mails to one recipient, by default
/// (`emailalertcoalesce`).
pub const WINDOW: Duration = Duration::from_secs(60);
/// The most mails to one recipient in an hour.
pub const CAP_PER_HOUR: usize = 20;
/// The most changes one mail lists.
pub const MAX_LINES: usize = 200;

const HOUR: Duration = Duration::from_secs(3600);

/// Who gets a mail, through which server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recipient {
    /// The `smtp` setting (None: localhost).
    pub server: Option<crate::config::SmtpServer>,
    /// `emailalertfrom` (None: root@director).
    pub from: Option<String>,
    /// The address.
    pub to: String,
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// To whom, through which server.
    pub recipient: Recipient,
    /// The subject line.
    pub subject: String,
    /// The body.
    pub body: String,
}

#[derive(Debug, Clone)]
struct Line {
    at: SystemTime,
    state: DaemonState,
    kind: &'static str,
    text: String,
    servicename: Option<String>,
}

#[derive(Debug)]
struct Pending {
    due: Duration,
    lines: Vec<Line>,
    more: usize,
}

#[derive(Debug)]
struct Down {
    since: SystemTime,
    reason: String,
    servicename: Option<String>,
    from: Option<String>,
    /// `since` on the policy's clock.
    since_mono: Duration,
    /// Each route with a reminder period, and when its next is due.
    reminders: Vec<(Alerts, Duration)>,
}

/// The mail policy's state.
#[derive(Debug)]
pub struct Policy {
    director: String,
    gather: Duration,
    window: Duration,
    /// Per subject and aspect (health, maintenance, fallback): the last
    /// state told.
    told: HashMap<(String, u8), u8>,
    down: HashMap<String, Down>,
    pending: HashMap<Recipient, Pending>,
    sent: HashMap<Recipient, VecDeque<Duration>>,
}

/// The aspect of a subject a change is about and its new value; None for
/// changes that are always news.
fn aspect(c: &Change) -> Option<(u8, u8)> {
    match c {
        Change::Down { .. } => Some((0, 0)),
        Change::Up => Some((0, 1)),
        Change::Maintenance(on) => Some((1, u8::from(*on))),
        Change::NoneUp { .. } => Some((2, 0)),
        Change::SomeUp => Some((2, 1)),
        Change::Holds { hold, .. } => Some((
            3,
            match *hold {
                "none" => 0,
                "local" => 1,
                "foreign" => 2,
                _ => 3,
            },
        )),
        Change::Impaired { reason, .. } => Some((4, u8::from(reason.is_some()))),
        Change::Gone | Change::ReloadRefused { .. } | Change::Stopped { .. } => None,
    }
}

impl Policy {
    /// A policy for this director (its name goes into every mail), at
    /// most one mail per `window` to a recipient.
    pub fn new(director: String, window: Duration) -> Policy {
        Policy {
            director,
            gather: GATHER.min(window),
            window,
            told: HashMap::new(),
            down: HashMap::new(),
            pending: HashMap::new(),
            sent: HashMap::new(),
        }
    }

    /// Takes a notice.
    pub fn notice(&mut self, n: Notice, now: Duration) {
        if !n.routes.iter().any(|r| !r.emailalert.is_empty()) {
            // Nobody is to be mailed about it (no emailalert, or no more
            // since a reload): nothing is kept (100,000 reals without
            // mail cost nothing here), and its reminders stop.
            self.down.remove(&n.subject);
            if let Some((a, _)) = aspect(&n.change) {
                self.told.remove(&(n.subject, a));
            }
            return;
        }
        if let Some((a, v)) = aspect(&n.change)
            && self.told.insert((n.subject.clone(), a), v) == Some(v)
        {
            return;
        }
        let (kind, text) = match &n.change {
            Change::Down { reason } => {
                let reminders = n
                    .routes
                    .iter()
                    .filter(|r| r.emailalertfreq > 0 && !r.emailalert.is_empty())
                    .map(|r| (r.clone(), now + Duration::from_secs(r.emailalertfreq)))
                    .collect();
                self.down.insert(
                    n.subject.clone(),
                    Down {
                        since: n.at,
                        since_mono: now,
                        reason: reason.clone(),
                        servicename: n.servicename.clone(),
                        from: n.from.clone(),
                        reminders,
                    },
                );
                ("down", format!("{} is down: {reason}", n.subject))
            }
            Change::Up => {
                self.down.remove(&n.subject);
                ("up", format!("{} is up", n.subject))
            }
            Change::Maintenance(true) => {
                ("maintenance", format!("{} enters maintenance", n.subject))
            }
            Change::Maintenance(false) => {
                ("maintenance", format!("{} leaves maintenance", n.subject))
            }
            Change::NoneUp { fallback: Some(f) } => (
                "fallback",
                format!(
                    "{} has no real up: the fallback server {f} serves",
                    n.subject
                ),
            ),
            Change::NoneUp { fallback: None } => (
                "fallback",
                format!(
                    "{} has no real up and no fallback server: it serves nothing",
                    n.subject
                ),
            ),
            Change::SomeUp => ("fallback", format!("{} has a real up again", n.subject)),
            Change::Holds { text, .. } => ("failover", text.clone()),
            Change::Gone => {
                self.down.remove(&n.subject);
                self.told.retain(|(s, _), _| *s != n.subject);
                return;
            }
            Change::ReloadRefused { errors } => (
                "reload",
                format!("reload refused, the running configuration stays:\n{errors}"),
            ),
            Change::Impaired {
                reason: Some(reason),
                ..
            } => (
                "impaired",
                format!(
                    "lvsd is impaired: {reason}; probes failing for lvsd's own reasons are not counted against reals"
                ),
            ),
            Change::Impaired {
                reason: None,
                uncounted,
            } => (
                "impaired",
                format!("lvsd is no longer impaired ({uncounted} probe(s) were not counted)"),
            ),
            Change::Stopped { removed } => (
                "stop",
                if removed.is_empty() {
                    "lvsd stopped; the IPVS table is left as it is (cleanstop=no)".to_owned()
                } else {
                    format!(
                        "lvsd stopped and removed (cleanstop): {}",
                        removed.join(", ")
                    )
                },
            ),
        };
        let line = Line {
            at: n.at,
            state: n.state,
            kind,
            text,
            servicename: n.servicename.clone(),
        };
        // One mail per address, even when two routes name it.
        let mut told = std::collections::HashSet::new();
        for r in &n.routes {
            if !n.state.mailed_in(r.emailalertstatus) {
                continue;
            }
            let mut r = r.clone();
            r.emailalert.retain(|to| told.insert(to.clone()));
            self.queue(&r, &n.from, &line, now);
        }
    }

    fn queue(&mut self, r: &Alerts, from: &Option<String>, line: &Line, now: Duration) {
        for to in &r.emailalert {
            let who = Recipient {
                server: r.smtp.clone(),
                from: from.clone(),
                to: to.clone(),
            };
            let due = self.earliest(&who, now);
            let p = self.pending.entry(who).or_insert_with(|| Pending {
                due,
                lines: Vec::new(),
                more: 0,
            });
            if p.lines.len() < MAX_LINES {
                p.lines.push(line.clone());
            } else {
                p.more += 1;
            }
        }
    }

    /// When a new burst for `who` may go: after [`GATHER`], a [`WINDOW`]
    /// after the last mail, and within the hourly cap.
    fn earliest(&self, who: &Recipient, now: Duration) -> Duration {
        let mut t = now + self.gather;
        if let Some(sent) = self.sent.get(who) {
            if let Some(&last) = sent.back() {
                t = t.max(last + self.window);
            }
            if sent.len() >= CAP_PER_HOUR {
                t = t.max(sent[sent.len() - CAP_PER_HOUR] + HOUR);
            }
        }
        t
    }

    /// When [`Policy::due`] has something next.
    pub fn next_wake(&self) -> Option<Duration> {
        let pending = self.pending.values().map(|p| p.due);
        let reminders = self
            .down
            .values()
            .flat_map(|d| d.reminders.iter().map(|(_, t)| *t));
        pending.chain(reminders).min()
    }

    /// The mails due at `now` (reminders joined first).
    pub fn due(&mut self, now: Duration) -> Vec<Mail> {
        self.remind(now);
        let ready: Vec<Recipient> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(r, _)| r.clone())
            .collect();
        let mut mails = Vec::new();
        for who in ready {
            // The cap may have moved since the burst was queued.
            let allowed = self.earliest(&who, now.saturating_sub(self.gather));
            if allowed > now {
                if let Some(p) = self.pending.get_mut(&who) {
                    p.due = allowed;
                }
                continue;
            }
            if let Some(p) = self.pending.remove(&who) {
                let sent = self.sent.entry(who.clone()).or_default();
                sent.push_back(now);
                while sent.front().is_some_and(|&t| t + HOUR <= now) {
                    sent.pop_front();
                }
                mails.push(self.compose(who, p));
            }
        }
        mails.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        mails
    }

    /// Everything pending, now (at stop).
    pub fn flush(&mut self) -> Vec<Mail> {
        let mut all: Vec<(Recipient, Pending)> = self.pending.drain().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter().map(|(r, p)| self.compose(r, p)).collect()
    }

    fn remind(&mut self, now: Duration) {
        let mut lines = Vec::new();
        for (subject, d) in &mut self.down {
            for (route, next) in &mut d.reminders {
                if *next > now {
                    continue;
                }
                *next = now + Duration::from_secs(route.emailalertfreq);
                let down_for = now.saturating_sub(d.since_mono);
                let for_ = format!(", {}", span(down_for));
                let line = Line {
                    at: d.since + down_for,
                    state: DaemonState::Running,
                    kind: "still down",
                    text: format!(
                        "{subject} is still down (since {}{for_}): {}",
                        httpdate::fmt_http_date(d.since),
                        d.reason
                    ),
                    servicename: d.servicename.clone(),
                };
                if DaemonState::Running.mailed_in(route.emailalertstatus) {
                    lines.push((route.clone(), d.from.clone(), line));
                }
            }
        }
        for (route, from, line) in lines {
            self.queue(&route, &from, &line, now);
        }
    }

    fn compose(&self, recipient: Recipient, p: Pending) -> Mail {
        let mut lines = p.lines;
        lines.sort_by_key(|l| l.at);
        let total = lines.len() + p.more;
        let services: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.servicename.as_deref())
            .collect();
        // ldirectord puts `[servicename] ` first; with one service only.
        let prefix = match services.first() {
            Some(s) if services.len() == lines.len() && services.iter().all(|x| x == s) => {
                format!("[{s}] ")
            }
            _ => String::new(),
        };
        let subject = if total == 1 {
            let first = lines[0].text.lines().next().unwrap_or_default();
            format!("[lvsd {}] {prefix}{first}", self.director)
        } else {
            let mut kinds: Vec<(&str, usize)> = Vec::new();
            for l in &lines {
                match kinds.iter_mut().find(|(k, _)| *k == l.kind) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((l.kind, 1)),
                }
            }
            let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!(
                "[lvsd {}] {prefix}{total} changes: {}{}",
                self.director,
                list.join(", "),
                if p.more > 0 { ", ..." } else { "" }
            )
        };
        let mut body = format!("lvsd on director {}:\n\n", self.director);
        for l in &lines {
            body.push_str(&format!(
                "{}  {}\n",
                httpdate::fmt_http_date(l.at),
                l.text.replace('\n', "\n    ")
            ));
        }
        if p.more > 0 {
            body.push_str(&format!(
                "... and {} more change(s) not listed (lvsd status shows the present state)\n",
                p.more
            ));
        }
        let states: Vec<&str> = {
            let mut s: Vec<&str> = lines.iter().map(|l| l.state.as_str()).collect();
            s.dedup();
            s
        };
        body.push_str(&format!("\nDaemon-Status: {}\n", states.join(", ")));
        if !prefix.is_empty() {
            body.push_str(&format!("Service name: {}\n", services[0]));
        }
        Mail {
            recipient,
            subject,
            body,
        }
    }
}

/// `12 min`, `3 h 5 min`, `40 s`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertStatus;

    fn alerts(to: &[&str], freq: u64) -> Alerts {
        Alerts {
            emailalert: to.iter().map(|s| (*s).to_owned()).collect(),
            emailalertfreq: freq,
            emailalertstatus: AlertStatus::ALL,
            smtp: crate::config::SmtpServer::parse("127.0.0.1:25").ok(),
        }
    }

    fn notice(subject: &str, change: Change, routes: Vec<Alerts>) -> Notice {
        Notice {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            state: DaemonState::Running,
            subject: subject.into(),
            change,
            routes,
            from: None,
            servicename: None,
        }
    }

    fn down(s: &str) -> Change {
        let _ = s;
        Change::Down {
            reason: "connect: connection refused".into(),
        }
    }

    #[test]
    fn a_burst_is_one_mail_per_recipient_listing_every_change() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let r = alerts(&["ops@example.org", "oncall@example.org"], 0);
        for i in 0..40 {
            p.notice(
                notice(&format!("real 10.0.0.{i}:80"), down(""), vec![r.clone()]),
                t0 + Duration::from_millis(i * 50),
            );
        }
        assert!(p.due(t0 + Duration::from_secs(4)).is_empty());
        let mails = p.due(t0 + GATHER);
        assert_eq!(mails.len(), 2);
        for m in &mails {
            assert_eq!(m.subject, "[lvsd d1] 40 changes: 40 down");
            assert_eq!(m.body.matches(" is down: connect").count(), 40);
            assert!(m.body.contains("Daemon-Status: running"));
        }
        assert!(p.next_wake().is_none());
    }

    #[test]
    fn a_repeated_state_is_never_mailed() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let r = alerts(&["ops@example.org"], 0);
        p.notice(notice("real a", down(""), vec![r.clone()]), t0);
        assert_eq!(p.due(t0 + GATHER).len(), 1);
        // Down again (another reason): not news.
        p.notice(
            notice(
                "real a",
                Change::Down {
                    reason: "timeout".into(),
                },
                vec![r.clone()],
            ),
            t0 + Duration::from_secs(100),
        );
        assert!(p.next_wake().is_none());
        p.notice(notice("real a", Change::Up, vec![r.clone()]), t0);
        p.notice(notice("real a", Change::Up, vec![r]), t0);
        let m = p.due(t0 + Duration::from_secs(1000));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].subject, "[lvsd d1] real a is up");
    }

    #[test]
    fn flapping_is_one_mail_a_minute_and_capped_per_hour_losing_nothing() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let r = alerts(&["ops@example.org"], 0);
        let mut mails = Vec::new();
        let mut changes = 0;
        // A change every 10 s for 3 hours.
        for i in 0..(3 * 360) {
            let now = t0 + Duration::from_secs(i * 10);
            let c = if i % 2 == 0 { down("") } else { Change::Up };
            p.notice(notice("real a", c, vec![r.clone()]), now);
            changes += 1;
            mails.extend(p.due(now).into_iter().map(|m| (now, m)));
        }
        mails.extend(p.flush().into_iter().map(|m| (t0, m)));
        let sends: Vec<Duration> = mails.iter().map(|(t, _)| *t).collect();
        for w in sends.windows(2).take(sends.len() - 2) {
            assert!(w[1] - w[0] >= WINDOW, "{:?}", w[1] - w[0]);
        }
        for start in 0..sends.len().saturating_sub(CAP_PER_HOUR + 1) {
            let end = start + CAP_PER_HOUR;
            assert!(sends[end] - sends[start] >= HOUR || end == sends.len() - 1);
        }
        assert!(mails.len() <= 3 * CAP_PER_HOUR + 1, "{}", mails.len());
        let listed: usize = mails
            .iter()
            .map(|(_, m)| {
                m.body.matches(" is down: ").count()
                    + m.body.matches(" is up").count()
                    + m.body
                        .lines()
                        .find_map(|l| l.strip_prefix("... and "))
                        .and_then(|l| l.split(' ').next())
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or(0)
            })
            .sum();
        assert_eq!(listed, changes);
    }

    #[test]
    fn reminders_at_emailalertfreq_while_down_then_stop() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let r = alerts(&["ops@example.org"], 300);
        p.notice(notice("real a", down(""), vec![r.clone()]), t0);
        assert_eq!(p.due(t0 + GATHER).len(), 1);
        assert_eq!(p.next_wake(), Some(t0 + Duration::from_secs(300)));
        let at = |s| t0 + Duration::from_secs(s);
        assert!(p.due(at(299)).is_empty());
        assert!(p.due(at(300)).is_empty(), "gathered first");
        let m = p.due(at(305));
        assert_eq!(m.len(), 1);
        assert!(
            m[0].subject.contains("real a is still down (since "),
            "{}",
            m[0].subject
        );
        assert!(m[0].subject.ends_with("connect: connection refused"));
        assert!(p.due(at(600)).is_empty());
        assert_eq!(p.due(at(605)).len(), 1);
        p.notice(notice("real a", Change::Up, vec![r]), at(700));
        assert_eq!(p.due(at(705)).len(), 1);
        assert!(p.next_wake().is_none(), "no reminder once up");
    }

    #[test]
    fn emailalertstatus_filters_by_daemon_state_and_gone_forgets() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let mut r = alerts(&["ops@example.org"], 60);
        r.emailalertstatus = AlertStatus {
            running: true,
            ..AlertStatus::NONE
        };
        let mut n = notice("real a", down(""), vec![r.clone()]);
        n.state = DaemonState::Starting;
        p.notice(n, t0);
        assert!(p.due(t0 + GATHER).is_empty(), "not mailed while starting");
        // Still counts as told: its reminder comes (running).
        assert!(p.due(t0 + Duration::from_secs(60)).is_empty(), "gathered");
        assert_eq!(p.due(t0 + Duration::from_secs(65)).len(), 1);
        p.notice(notice("real a", Change::Gone, vec![r.clone()]), t0);
        assert!(p.next_wake().is_none());
        // After Gone, the same state is news again.
        p.notice(
            notice("real a", down(""), vec![r]),
            t0 + Duration::from_secs(200),
        );
        assert!(p.next_wake().is_some());
    }

    #[test]
    fn failover_role_changes_are_told_once_each() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d2".into(), WINDOW);
        let r = alerts(&["ops@example.org"], 0);
        let holds = |hold, text: &str| {
            notice(
                "failover on d2",
                Change::Holds {
                    hold,
                    text: text.into(),
                },
                vec![r.clone()],
            )
        };
        p.notice(
            holds("all", "d2 holds 192.0.2.10/24 on eth0 (peer d1 dead)"),
            t0,
        );
        p.notice(holds("all", "d2 holds 192.0.2.10/24 on eth0 (again)"), t0);
        let m = p.due(t0 + GATHER);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].subject,
            "[lvsd d2] d2 holds 192.0.2.10/24 on eth0 (peer d1 dead)"
        );
        p.notice(holds("none", "d2 holds no virtual IP (standby)"), t0);
        assert!(p.next_wake().is_some());
    }

    #[test]
    fn servicename_prefixes_the_subject_as_ldirectord_does() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        let mut n = notice(
            "tcp:192.0.2.10:80",
            Change::NoneUp {
                fallback: Some("127.0.0.1:80".into()),
            },
            vec![alerts(&["ops@example.org"], 0)],
        );
        n.servicename = Some("web".into());
        p.notice(n, t0);
        let m = p.due(t0 + GATHER);
        assert_eq!(
            m[0].subject,
            "[lvsd d1] [web] tcp:192.0.2.10:80 has no real up: the fallback server 127.0.0.1:80 serves"
        );
        assert!(m[0].body.contains("Service name: web"));
    }

    /// A real nobody is mailed about costs no memory here, and one whose
    /// virtual stopped mailing (a reload) gets no more reminders.
    #[test]
    fn nothing_is_kept_for_reals_nobody_is_mailed_about() {
        let t0 = Duration::from_secs(1000);
        let mut p = Policy::new("d1".into(), WINDOW);
        for i in 0..1000 {
            p.notice(
                notice(&format!("real {i}"), down("x"), vec![alerts(&[], 60)]),
                t0,
            );
        }
        assert!(p.told.is_empty() && p.down.is_empty());
        // Mailed with reminders, then the mail taken away: no reminder.
        let to = vec![alerts(&["ops@example.org"], 60)];
        p.notice(notice("real 1", down("x"), to), t0);
        assert_eq!(p.due(t0 + GATHER).len(), 1);
        p.notice(
            notice("real 1", down("x"), vec![alerts(&[], 60)]),
            t0 + GATHER,
        );
        assert!(p.down.is_empty());
        assert!(p.due(t0 + Duration::from_secs(3600)).is_empty());
    }
}
