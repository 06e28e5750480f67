//! `service=mysql` and `service=pgsql`: ldirectord's DBI check. Connect
//! to `database` as `login` with `passwd`, run `request`: up when it
//! returns at least one row. ldirectord waits for ever here; lvsd's
//! deadline applies as to every check.

use std::net::{IpAddr, SocketAddr};

use mysql_async::prelude::Queryable;

use crate::{Login, ProbeError, Step};

/// Which database server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Pgsql,
}

/// A SQL check of one real.
#[derive(Debug, Clone)]
pub struct Sql {
    engine: Engine,
    addr: SocketAddr,
    login: Login,
    database: String,
    query: String,
    subject: String,
}

/// Aborts the PostgreSQL connection task when the probe ends or is dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Sql {
    /// Runs `query` on `database` at `addr:port` as `login`.
    pub fn new(
        engine: Engine,
        addr: IpAddr,
        port: u16,
        login: Login,
        database: &str,
        query: &str,
    ) -> Sql {
        let addr = SocketAddr::new(addr, port);
        let name = match engine {
            Engine::Mysql => "mysql",
            Engine::Pgsql => "pgsql",
        };
        Sql {
            engine,
            addr,
            subject: format!("{name} {}@{addr}/{database}", login.user),
            login,
            database: database.to_owned(),
            // ldirectord's config reader puts `/` before every request
            // (a path for http) and check_sql takes it off again
            // (`$query =~ s#^/##`): `request="SELECT 1"` sends `SELECT 1`.
            query: query.strip_prefix('/').unwrap_or(query).to_owned(),
        }
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    /// The number of rows `query` returned, counting to 1 at most.
    async fn rows(&self) -> Result<usize, ProbeError> {
        match self.engine {
            Engine::Mysql => self.mysql().await,
            Engine::Pgsql => self.pgsql().await,
        }
    }

    async fn mysql(&self) -> Result<usize, ProbeError> {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.addr.ip().to_string())
            .tcp_port(self.addr.port())
            .prefer_socket(false)
            .user(Some(self.login.user.clone()))
            .pass(Some(self.login.password.clone()))
            .db_name((!self.database.is_empty()).then(|| self.database.clone()));
        let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| {
            let step = match e {
                mysql_async::Error::Io(_) => crate::cause_step(Step::Connect, &e),
                _ => Step::Answer,
            };
            self.fail(step, format!("connecting: {e}"))
        })?;
        let rows = {
            let mut result = conn
                .query_iter(self.query.as_str())
                .await
                .map_err(|e| self.fail(Step::Answer, format!("`{}`: {e}", self.query)))?;
            let first = result
                .next()
                .await
                .map_err(|e| self.fail(Step::Exchange, format!("`{}`: {e}", self.query)))?;
            // Read the rest so the connection closes cleanly.
            let _ = result.drop_result().await;
            usize::from(first.is_some())
        };
        let _ = conn.disconnect().await;
        Ok(rows)
    }

    async fn pgsql(&self) -> Result<usize, ProbeError> {
        let mut config = tokio_postgres::Config::new();
        config
            .hostaddr(self.addr.ip())
            .port(self.addr.port())
            .user(self.login.user.clone())
            .password(self.login.password.clone());
        if !self.database.is_empty() {
            config.dbname(self.database.clone());
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            let step = if e.as_db_error().is_some() {
                Step::Answer
            } else {
                crate::cause_step(Step::Connect, &e)
            };
            self.fail(step, format!("connecting: {}", pg_reason(&e)))
        })?;
        let _task = Task(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let messages = client
            .simple_query(&self.query)
            .await
            .map_err(|e| self.fail(Step::Answer, format!("`{}`: {}", self.query, pg_reason(&e))))?;
        Ok(messages
            .iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count()
            .min(1))
    }

    async fn run(&self) -> Result<(), ProbeError> {
        if self.rows().await? == 0 {
            return Err(self.fail(Step::Answer, format!("`{}` returned no row", self.query)));
        }
        Ok(())
    }
}

/// A PostgreSQL error with the server's message when there is one.
fn pg_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s = format!("{s}: {inner}");
                source = inner.source();
            }
            s
        }
    }
}

checker_via_run!(Sql);
