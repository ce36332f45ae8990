//! The outbound-HTTP capability: `wasi:http/outgoing-handler` behind the pack's policy.
//!
//! Every request is checked against the pack's [`HttpPolicy`] by name, then the name is
//! resolved and each address is checked (non-public addresses need an explicit grant), and the
//! connection is made to the checked address itself — the name is not resolved a second time,
//! so DNS cannot swap in another address between the check and the connect. TLS still verifies
//! the certificate against the name (webpki roots). Each refusal is recorded, naming the
//! destination, and the guest gets `HTTP-request-denied` or `destination-IP-prohibited`.
//! Squall's own listeners are refused whatever the grants (see `reserved.rs`). Open
//! connections are capped per call (`[host] max_outbound_per_call`) and per process
//! (`[host] max_outbound`); past either the guest gets `connection-limit-reached`.

use crate::reserved::ReservedEndpoints;
use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use squall_core::capability::HttpPolicy;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Used when the guest sets no timeout; the execution's own timeout bounds the call anyway.
const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(600);

/// Denials kept (and logged) per execution; later ones are only counted, so a guest looping on
/// refused requests cannot fill the record or the log.
pub(crate) const MAX_DENIALS: usize = 20;

/// Refused capability uses of one execution: the first [`MAX_DENIALS`] messages and a count.
#[derive(Default)]
pub(crate) struct Denials {
    pub(crate) kept: Vec<String>,
    pub(crate) more: u64,
}

impl Denials {
    /// Records a refusal of `pack`'s component: kept and logged (for the audit trail) while
    /// under [`MAX_DENIALS`], counted after.
    pub(crate) fn push(&mut self, pack: &str, message: String) {
        if self.kept.len() < MAX_DENIALS {
            tracing::info!(pack.ref = %pack, "capability denied: {message}");
            self.kept.push(message);
        } else {
            self.more += 1;
        }
    }
}

/// The hooks of one execution's HTTP context.
pub(crate) struct OutboundHttp {
    pub(crate) policy: Arc<HttpPolicy>,
    pub(crate) denials: Arc<Mutex<Denials>>,
    /// Squall's own listeners: refused whatever the policy grants.
    pub(crate) reserved: ReservedEndpoints,
    /// Connections this call may still open (`[host] max_outbound_per_call` permits).
    pub(crate) per_call: Arc<Semaphore>,
    /// Connections the whole process may still open (`[host] max_outbound` permits).
    pub(crate) global: Arc<Semaphore>,
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), Error>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let policy = self.policy.clone();
        let denials = self.denials.clone();
        let reserved = self.reserved.clone();
        let per_call = self.per_call.clone();
        let global = self.global.clone();
        Box::new(async move {
            let deny = |message: String| {
                denials
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(&policy.pack, message);
            };
            let uri = request.uri();
            let tls = uri.scheme() == Some(&Scheme::HTTPS);
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            if let Err(message) = policy.check_destination(&host, port) {
                deny(message);
                return Err(Error::HttpRequestDenied);
            }
            // Taken before resolving (a lookup holds a thread) and held until the connection
            // ends (the io future below completes or is dropped).
            let permits = match (per_call.try_acquire_owned(), global.try_acquire_owned()) {
                (Ok(call), Ok(all)) => (call, all),
                (Err(_), _) => {
                    deny(format!(
                        "outbound HTTP to {host}:{port} refused: this call already holds its \
                         limit of open connections ([host] max_outbound_per_call)"
                    ));
                    return Err(Error::ConnectionLimitReached);
                }
                (_, Err(_)) => {
                    deny(format!(
                        "outbound HTTP to {host}:{port} refused: the server already holds its \
                         limit of open outbound connections ([host] max_outbound)"
                    ));
                    return Err(Error::ConnectionLimitReached);
                }
            };
            let mut refused = None;
            let mut chosen = None;
            for addr in resolve(&host, port).await? {
                match reserved
                    .check(&host, addr)
                    .and_then(|()| policy.check_address(&host, port, addr.ip()))
                {
                    Ok(()) => {
                        chosen = Some(addr);
                        break;
                    }
                    Err(message) => refused = Some(message),
                }
            }
            let Some(addr) = chosen else {
                deny(
                    refused
                        .unwrap_or_else(|| format!("outbound HTTP to {host}:{port}: no address")),
                );
                return Err(Error::DestinationIpProhibited);
            };
            tracing::debug!(pack.ref = %policy.pack, %host, %addr, "outbound http allowed");
            let (response, io) = send_pinned(request, addr, &host, tls, options).await?;
            let io = async move {
                let _permits = permits;
                io.await
            };
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    Ok(addrs.collect())
}

trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Io for T {}

/// Sends `request` over a new connection to `addr`, verifying TLS against `host`.
///
/// The structure follows `wasmtime_wasi_http::default_send_request` (wasmtime 48), which
/// connects by name; the difference is the fixed, already-checked address.
async fn send_pinned(
    mut request: http::Request<WasiBody>,
    addr: SocketAddr,
    host: &str,
    tls: bool,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<impl http_body::Body<Data = Bytes, Error = Error> + use<>>,
        impl Future<Output = Result<(), Error>> + Send + use<>,
    ),
    Error,
> {
    let options = options.unwrap_or_default();
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_IO_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_IO_TIMEOUT);
    let between_bytes_timeout = options
        .between_bytes_timeout
        .unwrap_or(DEFAULT_IO_TIMEOUT)
        .max(Duration::from_nanos(1));

    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let stream: Box<dyn Io> = if tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InternalError(Some(e.to_string())))?
            .with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            })
            .with_no_client_auth();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(Error::InvalidDnsNameError)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only path and query (the authority is in the Host header).
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)?;
        let mut idle = tokio::time::interval(between_bytes_timeout);
        idle.reset();
        Ok::<_, Error>(response.map(|incoming| TimedBody { incoming, idle }))
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Drive the connection while waiting for the response head.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    // The rest of the connection (the body) is driven by whoever polls the returned future.
    let io = async move {
        match conn {
            None => Ok(()),
            Some(c) => c.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                }
            }),
        }
    };
    Ok((response, io))
}

/// A response body that fails when no frame arrives within the between-bytes timeout.
struct TimedBody {
    incoming: hyper::body::Incoming,
    idle: tokio::time::Interval,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.idle.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
