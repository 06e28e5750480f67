//! `service=ldap` and `service=ldaps`: ldirectord's Net::LDAP check. Bind
//! (anonymously, or as `login` with `passwd`), search `request` (leading
//! `/` dropped) as the base with scope base and `(objectClass=*)`: up when
//! exactly one entry comes back and, when `receive` is set, its DN matches.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use regex::bytes::Regex;

use crate::{Login, ProbeError, Step};

/// An LDAP check of one real.
#[derive(Debug, Clone)]
pub struct Ldap {
    url: String,
    tls: bool,
    verify: bool,
    login: Option<Login>,
    base: String,
    receive: Option<Arc<Regex>>,
    subject: String,
}

/// Aborts the connection's driver task when the probe ends or is dropped.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Ldap {
    /// Checks the LDAP server at `addr:port` (`tls`: ldaps).
    pub fn new(
        addr: IpAddr,
        port: u16,
        tls: bool,
        verify: bool,
        login: Option<Login>,
        request: &str,
        receive: Option<Arc<Regex>>,
    ) -> Ldap {
        let sa = SocketAddr::new(addr, port);
        let scheme = if tls { "ldaps" } else { "ldap" };
        let base = request.strip_prefix('/').unwrap_or(request).to_owned();
        Ldap {
            url: format!("{scheme}://{sa}"),
            subject: format!("{scheme} {sa} base `{base}`"),
            tls,
            verify,
            login,
            base,
            receive,
        }
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut settings = LdapConnSettings::new();
        if self.tls {
            let config = crate::tls::client_config(self.verify)
                .map_err(|e| self.fail(Step::Internal, e.to_string()))?;
            settings = settings.set_config(config);
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| {
                let text = e.to_string();
                let step = if self.tls && (text.contains("TLS") || text.contains("certificate")) {
                    Step::Tls
                } else {
                    crate::cause_step(Step::Connect, &e)
                };
                self.fail(step, text.to_lowercase())
            })?;
        let _driver = Driver(tokio::spawn(async move {
            let _ = conn.drive().await;
        }));
        let (dn, pw) = match &self.login {
            Some(l) => (l.user.as_str(), l.password.as_str()),
            None => ("", ""),
        };
        let bound = ldap
            .simple_bind(dn, pw)
            .await
            .map_err(|e| self.fail(Step::Exchange, format!("bind: {e}")))?;
        if bound.rc != 0 {
            return Err(self.fail(Step::Answer, format!("bind as `{dn}`: {bound}")));
        }
        let found = ldap
            .search(&self.base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| self.fail(Step::Exchange, format!("search: {e}")))?;
        let (entries, result) = (found.0, found.1);
        if result.rc != 0 {
            return Err(self.fail(Step::Answer, format!("search: {result}")));
        }
        let _ = ldap.unbind().await;
        if entries.len() != 1 {
            return Err(self.fail(
                Step::Answer,
                format!("{} entries, want exactly 1", entries.len()),
            ));
        }
        let dn = entries
            .into_iter()
            .next()
            .map(|e| SearchEntry::construct(e).dn)
            .unwrap_or_default();
        match &self.receive {
            Some(re) if !crate::perl_match(re, dn.as_bytes()) => Err(self.fail(
                Step::Answer,
                format!("the entry `{dn}` does not match `{}`", crate::shown(re)),
            )),
            _ => Ok(()),
        }
    }
}

checker_via_run!(Ldap);
