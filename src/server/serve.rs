//! The HTTP/1.1 server loop: accepting connections and serving each one with
//! the connection timeouts of #17 item 4 (slow and idle clients).
//!
//! `axum::serve` has no timer, so a client that sends half a request head, or
//! nothing, holds a task and a file descriptor for as long as it likes, and
//! enough of them exhaust the descriptors. Here each connection gets:
//!
//! - hyper's header-read timeout: the whole request head must arrive within
//!   `PORTCULLIS_HEADER_READ_TIMEOUT` (on a kept-alive connection counted from
//!   the end of the previous response);
//! - an idle timeout ([`IdleTimeout`]): a connection with no request in flight
//!   that stays silent for `PORTCULLIS_KEEPALIVE_TIMEOUT` is closed;
//! - the body-read and request deadlines, in the router
//!   (`middleware::deadlines`).
//!
//! Accept errors (above all `EMFILE` when descriptors run out) back off
//! exponentially instead of retrying at once: the listening socket stays
//! readable while connections wait in the backlog, so an immediate retry
//! would spin a core.
//!
//! HTTP/1.1 only, as before (axum's `http2` feature was never on). hyper-util's
//! `auto` builder would need the `h2` crate, and its protocol sniffing waits
//! for the first bytes without a timer.

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, Response},
};
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Sleep,
};
use tower::ServiceExt;

use super::config::ConnectionSettings;

/// Serves `router` on `listener` until `signal` resolves, then stops
/// accepting and waits for the open connections: idle ones close at once,
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionSettings,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut backoff = Backoff::default();
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(error) => {
                if let Some(pause) = backoff.failed(&error) {
                    tokio::select! {
                        () = &mut signal => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
        };
        tracing::trace!(%remote, "connection accepted");
        // Without TCP_NODELAY, keep-alive clients stall ~40 ms on small
        // responses (Nagle + delayed ACK).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "failed to set TCP_NODELAY");
        }
        let in_flight = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(IdleTimeout::new(
            tcp,
            limits.keepalive_timeout,
            in_flight.clone(),
        ));
        let service = TowerToHyperService::new(ConnectionService {
            router: router.clone(),
            remote,
            in_flight,
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // Timeouts and clients that go away end connections with an
            // error; none of it is the server's fault.
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, so idle and slow
/// clients meet the connection timeouts before they meet `EMFILE` (a common
/// default soft limit is 1,024, far below what the hard limit allows).
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        // `None` is "unlimited".
        let shown = |limit: Option<u64>| limit.map_or("unlimited".to_string(), |n| n.to_string());
        let limit = getrlimit(Resource::Nofile);
        let (soft, hard) = (shown(limit.current), shown(limit.maximum));
        if limit.current == limit.maximum || limit.current.is_none() {
            tracing::info!(%soft, %hard, "open-file limit already at the hard limit");
            return;
        }
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                before = %soft,
                after = %hard,
                "raised the soft open-file limit to the hard limit"
            ),
            Err(error) => tracing::warn!(
                %error,
                %soft,
                %hard,
                "could not raise the open-file limit; serving with the soft limit"
            ),
        }
    }
}

/// Exponential backoff for accept errors, and one log line per streak
/// rather than one per failed attempt.
#[derive(Default)]
struct Backoff {
    failures: u64,
    delay: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const LONGEST: Duration = Duration::from_millis(500);

    /// The pause before the next attempt, or `None` to retry at once.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        // A connection that was reset or aborted while it waited in the
        // backlog is that client's problem: the next one may be fine, and
        // each such error consumed a queued connection, so retrying cannot
        // spin.
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            tracing::debug!(%error, "a connection failed before it was accepted");
            return None;
        }
        if self.failures == 0 {
            tracing::warn!(
                %error,
                "cannot accept connections (out of file descriptors?); backing off \
                 until connections close"
            );
        }
        self.failures += 1;
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::LONGEST);
        Some(self.delay)
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failed_attempts = self.failures,
                "accepting connections again"
            );
        }
        *self = Backoff::default();
    }
}

/// The router for one connection: adds the peer address for
/// `ConnectInfo<SocketAddr>` (as `into_make_service_with_connect_info` did),
/// and counts the connection's requests in flight, from their arrival until
/// their response body has been sent, for [`IdleTimeout`].
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    remote: SocketAddr,
    in_flight: Arc<AtomicUsize>,
}

impl tower::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready; `call` uses a clone of it via oneshot.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let busy = InFlight::enter(&self.in_flight);
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            // The request stays in flight until hyper has sent (and dropped)
            // the whole body: a page streamed in parts is not "idle" between
            // its parts.
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _still_sending = &busy;
                    frame
                }))
            }))
        })
    }
}

/// One request in flight on a connection, until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that reports end-of-stream once it has been silent for
/// `limit` with no request in flight: hyper then closes the connection as a
/// client that hung up between requests. Any bytes from the client restart
/// the wait; a partial request head is bounded by hyper's header-read
/// timeout, not by this.
struct IdleTimeout {
    inner: TcpStream,
    limit: Duration,
    in_flight: Arc<AtomicUsize>,
    /// Armed while reads are pending and nothing is in flight.
    idle: Option<Pin<Box<Sleep>>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, limit: Duration, in_flight: Arc<AtomicUsize>) -> IdleTimeout {
        IdleTimeout {
            inner,
            limit,
            in_flight,
            idle: None,
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, buf) {
            // Bytes, end of stream or an error: not silence.
            this.idle = None;
            return Poll::Ready(result);
        }
        if this.in_flight.load(Ordering::Acquire) > 0 {
            // Waiting for our own answer is not the client being idle.
            this.idle = None;
            return Poll::Pending;
        }
        let limit = this.limit;
        let idle = this
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match idle.as_mut().poll(cx) {
            // Nothing read into `buf`: end of stream.
            Poll::Ready(()) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_exponentially_up_to_a_ceiling() {
        let mut backoff = Backoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).filter_map(|_| backoff.failed(&emfile)).collect();
        assert_eq!(pauses.len(), 10, "every resource error pauses");
        assert_eq!(pauses[0], Backoff::FIRST);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(pauses[9], Backoff::LONGEST);
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile), Some(Backoff::FIRST));
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&reset), None);
    }
}
