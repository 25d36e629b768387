//! The two steps of a provider request that a socket shutdown cannot interrupt — the name
//! lookup and the TCP connect — made abortable: each runs on a short-lived thread while the
//! turn's thread waits on its result, the call's abort and the step's timeout. They run only for
//! a new connection (a kept-alive one skips both), and an IP-literal host (a local model server,
//! the test fakes) skips the lookup altogether. Once connected, the socket is registered with
//! the agent, whose `shutdown` then cuts TLS and the exchange itself.
//!
//! The abort reaches these steps through a thread-local set by the transport for the length of
//! one call: the call runs on the turn's own thread, which is the thread ureq resolves and
//! connects on.

use crossbeam_channel::{after, bounded, never, select, Receiver};
use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, TcpConnector, Transport,
};

thread_local! {
    /// Disconnected once the current call is aborted (the sender lives in the abort hook).
    static CALL_ABORT: RefCell<Option<Receiver<()>>> = const { RefCell::new(None) };
}

/// Runs `f` with `abort` as this thread's call abort (the steps below wait on it).
pub(crate) fn with_call_abort<T>(abort: Receiver<()>, f: impl FnOnce() -> T) -> T {
    CALL_ABORT.with(|a| *a.borrow_mut() = Some(abort));
    let _reset = OnExit(|| CALL_ABORT.with(|a| *a.borrow_mut() = None));
    f()
}

/// Runs its closure when dropped, so a thread-local setting is undone even if the call it
/// framed panics (the worker carries on with its next job).
struct OnExit<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnExit<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn call_abort() -> Receiver<()> {
    CALL_ABORT
        .with(|a| a.borrow().clone())
        .unwrap_or_else(never)
}

/// Runs `step` on a new thread and waits for it, the call's abort or `limit`, whichever comes
/// first. An abandoned step ends on its own (its own timeout bounds it) and its result is
/// dropped.
fn abortable<T: Send + 'static>(
    name: &str,
    limit: UreqDuration,
    step: impl FnOnce() -> Result<T, ureq::Error> + Send + 'static,
) -> Result<T, ureq::Error> {
    let (tx, rx) = bounded(1);
    crate::threads::spawn_named(name, crate::threads::STACK_PARSER, move || {
        let _ = tx.send(step());
    })?;
    let timer = if limit.is_not_happening() {
        never()
    } else {
        after(*limit)
    };
    let abort = call_abort();
    select! {
        recv(rx) -> got => got.unwrap_or_else(|_| Err(interrupted("the step ended without a result"))),
        recv(abort) -> _ => Err(interrupted("aborted")),
        recv(timer) -> _ => Err(ureq::Error::Timeout(ureq::Timeout::Connect)),
    }
}

fn interrupted(why: &'static str) -> ureq::Error {
    ureq::Error::Io(io::Error::new(io::ErrorKind::Interrupted, why))
}

/// ureq's resolver, on its own thread for a name, skipped for an IP literal.
#[derive(Debug, Default)]
pub(crate) struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = ip_literal(uri) {
            let mut found = self.empty();
            found.push(addr);
            return Ok(found);
        }
        let (uri, config) = (uri.clone(), config.clone());
        // Without a timeout ureq looks the name up on the calling thread: this one.
        let untimed = NextTimeout {
            after: UreqDuration::NotHappening,
            per_read: None,
            per_write: None,
            ..timeout
        };
        abortable("llm-dns", timeout.after, move || {
            DefaultResolver::default().resolve(&uri, &config, untimed)
        })
    }
}

pub(crate) fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// ureq's TCP connector, on its own thread. (A transport the chain already holds — a proxy
/// tunnel — passes through.)
#[derive(Debug, Default)]
pub(crate) struct AbortableTcp;

impl<In: Transport> Connector<In> for AbortableTcp {
    type Out = Either<In, Box<dyn Transport>>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let owned = OwnedDetails::of(details);
        // ureq's connector bounds each address by the timeout already; this bound is for a
        // connect call that overruns it.
        let limit = details.timeout.after;
        let transport = abortable("llm-connect", limit, move || owned.connect())?;
        Ok(transport.map(|t| Either::B(Box::new(ReadCapped(t)) as Box<dyn Transport>)))
    }
}

thread_local! {
    /// While set, no read on this thread's connections waits past this instant.
    static READS_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with every socket read on this thread bounded to end within `limit`: a read that
/// would wait longer fails with a timeout instead.
pub(crate) fn with_reads_bounded<T>(limit: std::time::Duration, f: impl FnOnce() -> T) -> T {
    READS_UNTIL.with(|r| r.set(Some(Instant::now() + limit)));
    let _reset = OnExit(|| READS_UNTIL.with(|r| r.set(None)));
    f()
}

/// A TCP transport whose reads obey `with_reads_bounded`. (TLS sits on top of it, so the
/// bound holds for both.)
#[derive(Debug)]
struct ReadCapped(Box<dyn Transport>);

impl Transport for ReadCapped {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, mut timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if let Some(until) = READS_UNTIL.with(Cell::get) {
            // Never zero: ureq reads a zero timeout as "one second".
            let left = until
                .saturating_duration_since(Instant::now())
                .max(std::time::Duration::from_millis(1));
            let capped = timeout.per_read.map_or(left, |d| (*d).min(left));
            timeout.per_read = Some(capped.into());
        }
        self.0.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }
}

/// What ureq's TCP connector reads, owned so that it can run on another thread.
struct OwnedDetails {
    uri: Uri,
    addrs: ResolvedSocketAddrs,
    config: Config,
    request_level: bool,
    now: ureq::unversioned::transport::time::Instant,
    timeout: NextTimeout,
    current_time: Arc<dyn Fn() -> ureq::unversioned::transport::time::Instant + Send + Sync>,
    run_connector: Arc<RunConnector>,
    register_shutdown: Arc<RegisterShutdown>,
}

type RunConnector =
    dyn Fn(&ConnectionDetails) -> Result<Box<dyn Transport>, ureq::Error> + Send + Sync;
type RegisterShutdown = dyn Fn(std::sync::Weak<dyn ureq::unversioned::transport::ShutdownHandle>) -> Result<(), ureq::Error>
    + Send
    + Sync;

impl OwnedDetails {
    fn of(d: &ConnectionDetails) -> OwnedDetails {
        OwnedDetails {
            uri: d.uri.clone(),
            addrs: d.addrs.clone(),
            config: d.config.clone(),
            request_level: d.request_level,
            now: d.now,
            timeout: d.timeout,
            current_time: d.current_time.clone(),
            run_connector: d.run_connector.clone(),
            register_shutdown: d.register_shutdown.clone(),
        }
    }

    /// The socket registers itself with the agent here, so an abort after this point shuts it.
    fn connect(self) -> Result<Option<Box<dyn Transport>>, ureq::Error> {
        let resolver = DefaultResolver::default();
        let details = ConnectionDetails {
            uri: &self.uri,
            addrs: self.addrs,
            config: &self.config,
            request_level: self.request_level,
            resolver: &resolver,
            now: self.now,
            timeout: self.timeout,
            current_time: self.current_time,
            run_connector: self.run_connector,
            register_shutdown: self.register_shutdown,
        };
        let tcp = Connector::<()>::connect(&TcpConnector::default(), &details, None)?;
        Ok(tcp.map(|t| Box::new(t) as Box<dyn Transport>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_does_not_leave_the_settings_behind() {
        let caught = std::panic::catch_unwind(|| {
            with_reads_bounded(std::time::Duration::from_millis(1), || panic!("inside"))
        });
        assert!(caught.is_err());
        assert_eq!(
            READS_UNTIL.with(Cell::get),
            None,
            "reads are unbounded again"
        );
        let (_tx, rx) = bounded::<()>(1);
        let caught = std::panic::catch_unwind(|| with_call_abort(rx, || panic!("inside")));
        assert!(caught.is_err());
        assert!(
            CALL_ABORT.with(|a| a.borrow().is_none()),
            "no call's abort is left"
        );
    }

    #[test]
    fn only_ip_literals_skip_the_lookup() {
        let addr = |u: &str| ip_literal(&u.parse::<Uri>().unwrap());
        assert_eq!(
            addr("http://127.0.0.1:8080/v1"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            addr("https://[::1]/v1/messages"),
            Some("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            addr("http://10.0.0.2/x"),
            Some("10.0.0.2:80".parse().unwrap())
        );
        assert_eq!(addr("https://api.anthropic.com/v1/messages"), None);
        assert_eq!(addr("http://localhost:11434/v1"), None);
    }
}
