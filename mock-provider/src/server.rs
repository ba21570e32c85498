//! The HTTP server: connections (HTTP/1.1 and h2c), routing, recording and
//! fault injection around the answers of `answers`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use model_router_core::tokens::TokenError;
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::answers::{self, Answer, Api, CacheUsage, Filler, TextPlan};
use crate::body::{self, Aborted, ResBody};
use crate::conn::{ConnControl, ResettableIo};
use crate::faults::{self, Action, Counters, FaultSpec, Source};
use crate::record::{Record, Recorder};
use crate::tool_calls;
use crate::Config;

/// Request header carrying a fault spec.
pub const FAULT_HEADER: &str = "x-mock-fault";
/// Request header: completion length in tokens.
pub const COMPLETION_TOKENS_HEADER: &str = "x-mock-completion-tokens";
/// Request header: number of content pieces (stream chunks) of the answer.
pub const STREAM_CHUNKS_HEADER: &str = "x-mock-stream-chunks";
/// `x-mock-usage: omit` answers without any usage (JSON body or stream), like
/// providers that do not report it.
pub const USAGE_HEADER: &str = "x-mock-usage";
/// `x-mock-cache: read=N,write=N,write_1h=N`: the usage reports that many
/// prompt tokens as cache reads and (Anthropic) 5-minute / 1-hour writes.
pub const CACHE_HEADER: &str = "x-mock-cache";
/// Response header: the provider's name.
pub const PROVIDER_HEADER: &str = "x-mock-provider";
/// Response header: the model the request asked for.
pub const MODEL_HEADER: &str = "x-mock-model";

/// How long `reset-mid-body` lets the partial body reach the client before
/// aborting.
const FLUSH_PAUSE: Duration = Duration::from_millis(50);

/// Events sent by `reset-mid-body` on a stream before the abort.
const EVENTS_BEFORE_RESET: usize = 2;

struct State {
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    filler: Filler,
    counters: Counters,
    recorder: Recorder,
    provider_header: HeaderValue,
    /// Numbers answers (ids) and records.
    serial: AtomicU64,
}

/// A bound mock provider, ready to serve.
pub struct Server {
    state: Arc<State>,
    listener: TcpListener,
}

impl Server {
    /// Prepares to serve on `listener`: loads the token encoding (so the first
    /// request is not slow) and checks the configuration.
    pub fn new(config: Config, listener: TcpListener) -> io::Result<Server> {
        let filler = Filler::new(config.encoding).map_err(io::Error::other)?;
        let provider_header = HeaderValue::from_str(&config.name).map_err(|_| {
            io::Error::other(format!(
                "name {:?} is not a valid header value",
                config.name
            ))
        })?;
        let recorder = Recorder::new(config.record, config.max_records);
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        Ok(Server {
            state: Arc::new(State {
                tls,
                config,
                filler,
                counters: Counters::new(),
                recorder,
                provider_header,
                serial: AtomicU64::new(0),
            }),
            listener,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes; open connections are then dropped.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(self.state.clone(), stream));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        eprintln!("mock-provider {}: accept: {e}", self.state.config.name);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        Ok(())
    }
}

/// Serves `config` on `listener` forever (see [`Server`] for more control).
pub async fn serve(config: Config, listener: TcpListener) -> io::Result<()> {
    Server::new(config, listener)?.run().await
}

async fn serve_connection(state: Arc<State>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let control = Arc::new(ConnControl::default());
    if let Some(acceptor) = state.tls.clone() {
        if crate::tls::starts_tls(&stream).await {
            // A failed handshake (the client refused our certificate) ends here.
            let Ok((tls, sni)) = crate::tls::accept(&acceptor, stream).await else {
                return;
            };
            let peer = Peer { tls: true, sni };
            let io = hyper_util::rt::TokioIo::new(tls);
            let service = hyper::service::service_fn(move |request| {
                handle(state.clone(), control.clone(), peer.clone(), request)
            });
            let _ = builder().serve_connection(io, service).await;
            return;
        }
    }
    let io = ResettableIo::new(stream, control.clone());
    let peer = Peer::default();
    let service = hyper::service::service_fn(move |request| {
        handle(state.clone(), control.clone(), peer.clone(), request)
    });
    // Errors here are clients going away, or our own injected resets.
    let _ = builder().serve_connection(io, service).await;
}

/// What the connection told about itself.
#[derive(Debug, Clone, Default)]
struct Peer {
    tls: bool,
    sni: Option<String>,
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024);
    builder
}

/// Everything a response needs besides its body.
struct Reply {
    api: Option<Api>,
    model: Option<String>,
}

impl Reply {
    fn response(
        &self,
        state: &State,
        status: StatusCode,
        content_type: &'static str,
        body: ResBody,
    ) -> Response<ResBody> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(PROVIDER_HEADER, state.provider_header.clone());
        if let Some(model) = self.model.as_deref() {
            if let Ok(value) = HeaderValue::from_str(model) {
                headers.insert(MODEL_HEADER, value);
            }
        }
        response
    }

    fn json(&self, state: &State, status: StatusCode, body: impl Into<Bytes>) -> Response<ResBody> {
        self.response(state, status, "application/json", body::full(body))
    }

    fn error(&self, state: &State, status: StatusCode, message: &str) -> Response<ResBody> {
        let body = answers::error_json(self.api, status.as_u16(), message).to_string();
        let mut response = self.json(state, status, body);
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("0"));
        }
        response
    }
}

/// Ends the request without (more of) a response: on HTTP/1 the whole
/// connection is closed with a TCP reset; on HTTP/2 only the stream is reset
/// (RST_STREAM), as other requests share the connection.
#[derive(Clone)]
struct Abort {
    control: Arc<ConnControl>,
    http2: bool,
}

impl Abort {
    fn arm(&self) -> Aborted {
        if !self.http2 {
            self.control.reset_on_close();
        }
        Aborted
    }
}

async fn handle(
    state: Arc<State>,
    control: Arc<ConnControl>,
    peer: Peer,
    request: Request<Incoming>,
) -> Result<Response<ResBody>, Aborted> {
    let (parts, incoming) = request.into_parts();
    let abort = Abort {
        control,
        http2: parts.version == Version::HTTP_2,
    };
    let path = parts.uri.path();
    if path == "/__mock" || path.starts_with("/__mock/") {
        return Ok(admin(&state, &parts));
    }
    let no_reply = Reply {
        api: None,
        model: None,
    };
    let body = match Limited::new(incoming, state.config.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(no_reply.error(&state, StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
        }
        // The client went away mid-body: nobody to answer.
        Err(_) => return Err(Aborted),
    };
    let api = Api::from_path(path).filter(|_| parts.method == Method::POST);
    let model = body_model(&body);
    let reply = Reply {
        api,
        model: model.clone(),
    };

    let header_spec = match parts.headers.get(FAULT_HEADER).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(text)) => FaultSpec::parse(text).map(Some).map_err(|e| e.to_string()),
        Some(Err(_)) => Err(format!("{FAULT_HEADER} is not ASCII")),
    };
    let chosen = match (&api, &header_spec) {
        (Some(_), Ok(header)) => {
            let mut specs = Vec::with_capacity(2);
            if let Some(header) = header {
                specs.push((Source::Header, header));
            }
            specs.push((Source::Flag, &state.config.faults));
            faults::choose(
                &specs,
                &state.counters,
                &state.config.name,
                model.as_deref(),
            )
        }
        _ => None,
    };
    let serial = state.serial.fetch_add(1, Ordering::Relaxed);
    if state.recorder.enabled() {
        let mut record = record(&state, serial, &parts, &body, model.clone(), &chosen);
        record.sni = peer.sni.clone();
        record.tls = peer.tls;
        state.recorder.push(record);
    }

    let Some(api) = api else {
        let message = format!("mock-provider: no endpoint for {} {}", parts.method, path);
        return Ok(reply.error(&state, StatusCode::NOT_FOUND, &message));
    };
    if let Err(message) = header_spec {
        return Ok(reply.error(&state, StatusCode::BAD_REQUEST, &message));
    }
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let mut delivery = Delivery::default();
    if let Some(chosen) = chosen {
        match chosen.action {
            Action::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = format!(
                    "mock-provider {}: injected fault {} ({})",
                    state.config.name, code, chosen.rule
                );
                return Ok(reply.error(&state, status, &message));
            }
            Action::Reset => return Err(abort.arm()),
            Action::Hang => {
                std::future::pending::<()>().await;
                return Err(Aborted);
            }
            Action::Garbage => {
                let garbage = format!(
                    "<html>mock-provider {} garbage: this is not JSON {{\"choices\": [",
                    state.config.name
                );
                return Ok(reply.json(&state, StatusCode::OK, garbage));
            }
            Action::Delay(delay) => tokio::time::sleep(delay).await,
            Action::FirstByteDelay(delay) => delivery.first_byte_delay = Some(delay),
            Action::ResetMidBody => delivery.cut = Some(abort),
            // `choose` resolves counts; treat a stray one as no fault.
            Action::Count(..) => {}
        }
    }
    Ok(answer(&state, api, serial, &parts.headers, &body, reply, delivery).await)
}

/// How the body of a normal answer goes out.
#[derive(Default)]
struct Delivery {
    /// Wait before the first byte of the body (streams: after the headers).
    first_byte_delay: Option<Duration>,
    /// Abort the response partway (`reset-mid-body`).
    cut: Option<Abort>,
}

async fn answer(
    state: &State,
    api: Api,
    serial: u64,
    headers: &HeaderMap,
    body: &[u8],
    mut reply: Reply,
    delivery: Delivery,
) -> Response<ResBody> {
    let prompt = match answers::read_request(api, body, state.config.encoding) {
        Ok(prompt) => prompt,
        Err(message) => return reply.error(state, StatusCode::BAD_REQUEST, &message),
    };
    if prompt.model.is_some() {
        reply.model.clone_from(&prompt.model);
    }
    let chunks = match header_u64(headers, STREAM_CHUNKS_HEADER) {
        Ok(chunks) => chunks,
        Err(message) => return reply.error(state, StatusCode::BAD_REQUEST, &message),
    };
    let wanted = match header_u64(headers, COMPLETION_TOKENS_HEADER) {
        Ok(wanted) => wanted,
        Err(message) => return reply.error(state, StatusCode::BAD_REQUEST, &message),
    };
    let cache = match headers.get(CACHE_HEADER).map(|v| v.to_str()) {
        None => CacheUsage::default(),
        Some(Ok(spec)) => match CacheUsage::parse(spec) {
            Ok(cache) => cache,
            Err(message) => return reply.error(state, StatusCode::BAD_REQUEST, &message),
        },
        Some(Err(_)) => {
            return reply.error(state, StatusCode::BAD_REQUEST, "x-mock-cache is not ASCII")
        }
    };
    let omit_usage = headers
        .get(USAGE_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"omit"));
    let model = prompt
        .model
        .clone()
        .unwrap_or_else(|| "unknown-model".to_string());
    let plan = text_plan(state, &model, chunks, wanted, prompt.max_output_tokens);
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => return reply.error(state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let answer = Answer {
        api,
        serial,
        created: unix_now(),
        model,
        prompt_tokens: prompt.prompt_tokens,
        include_usage: prompt.include_usage && !omit_usage,
        plan,
        cache,
    };

    let tool = headers
        .get(tool_calls::TOOL_CALL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(name) = tool {
        if prompt.stream {
            if let Some(events) = tool_calls::events(&answer, &name) {
                let body = body::from_iter(events.into_iter());
                return reply.response(state, StatusCode::OK, "text/event-stream", body);
            }
        } else if let Some(json) = tool_calls::json(&answer, &name) {
            return reply.json(state, StatusCode::OK, Bytes::from(json.to_string()));
        }
    }

    if prompt.stream {
        let body = match delivery {
            Delivery {
                first_byte_delay: None,
                cut: None,
            } => body::from_iter(answer.events()),
            Delivery {
                first_byte_delay,
                cut,
            } => paced_stream(answer, first_byte_delay, cut),
        };
        let mut response = reply.response(state, StatusCode::OK, "text/event-stream", body);
        response
            .headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-cache"));
        return response;
    }

    if let Some(delay) = delivery.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    let json = if omit_usage {
        let mut value = answer.json();
        if let Some(object) = value.as_object_mut() {
            object.remove("usage");
        }
        Bytes::from(value.to_string())
    } else {
        answer.json_bytes()
    };
    let Some(abort) = delivery.cut else {
        return reply.json(state, StatusCode::OK, json);
    };
    // Announce the whole length, send half, then abort.
    let length = json.len();
    let (tx, body) = body::channel(2);
    tokio::spawn(async move {
        let half = json.slice(..length / 2);
        if tx.send(Ok(half)).await.is_ok() {
            tokio::time::sleep(FLUSH_PAUSE).await;
            let _ = tx.send(Err(abort.arm())).await;
        }
    });
    let mut response = reply.response(state, StatusCode::OK, "application/json", body);
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The text to answer: `chunks` pieces, or `wanted` tokens (default: see
/// `TextPlan::default_tokens`) capped by the request's maximum.
fn text_plan(
    state: &State,
    model: &str,
    chunks: Option<u64>,
    wanted: Option<u64>,
    max_output_tokens: Option<u64>,
) -> Result<TextPlan, TokenError> {
    let name = &state.config.name;
    if let Some(chunks) = chunks {
        return TextPlan::with_pieces(&state.filler, name, model, chunks);
    }
    let wanted = match wanted {
        Some(wanted) => wanted,
        None => TextPlan::default_tokens(&state.filler, name, model)?,
    };
    let target = max_output_tokens.map_or(wanted, |max| wanted.min(max));
    TextPlan::with_tokens(&state.filler, name, model, target)
}

/// A streamed answer fed by a task: after `first_byte_delay`, and cut by
/// `cut` after a couple of events (never reaching the last one).
fn paced_stream(answer: Answer, first_byte_delay: Option<Duration>, cut: Option<Abort>) -> ResBody {
    let (tx, body) = body::channel(32);
    tokio::spawn(async move {
        if let Some(delay) = first_byte_delay {
            tokio::time::sleep(delay).await;
        }
        let mut events = answer.events().peekable();
        let mut sent = 0usize;
        while let Some(event) = events.next() {
            if let Some(abort) = &cut {
                if sent == EVENTS_BEFORE_RESET || events.peek().is_none() {
                    tokio::time::sleep(FLUSH_PAUSE).await;
                    let _ = tx.send(Err(abort.arm())).await;
                    return;
                }
            }
            if tx.send(Ok(event)).await.is_err() {
                return; // the client went away
            }
            sent += 1;
        }
    });
    body
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name} must be a non-negative integer")),
    }
}

/// The body's top-level `model` string, if it is JSON with one.
fn body_model(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ModelOnly {
        #[serde(default)]
        model: Option<serde_json::Value>,
    }
    let parsed: ModelOnly = serde_json::from_slice(body).ok()?;
    match parsed.model {
        Some(serde_json::Value::String(model)) => Some(model),
        _ => None,
    }
}

fn record(
    state: &State,
    seq: u64,
    parts: &Parts,
    body: &[u8],
    model: Option<String>,
    chosen: &Option<faults::Chosen>,
) -> Record {
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Record {
        seq,
        provider: state.config.name.clone(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        version: format!("{:?}", parts.version),
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
        body_len: body.len(),
        model,
        content_length: parts
            .headers
            .get(CONTENT_LENGTH)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        fault: chosen.as_ref().map(|c| c.rule.clone()),
        sni: None,
        tls: false,
    }
}

fn admin(state: &State, parts: &Parts) -> Response<ResBody> {
    let reply = Reply {
        api: None,
        model: None,
    };
    let path = parts.uri.path().trim_end_matches('/');
    match (&parts.method, path) {
        (&Method::GET, "/__mock/health") => reply.json(
            state,
            StatusCode::OK,
            json!({"status": "ok", "provider": state.config.name}).to_string(),
        ),
        (&Method::GET, "/__mock/requests") => {
            reply.json(state, StatusCode::OK, state.recorder.to_json())
        }
        (&Method::DELETE, "/__mock/requests") => {
            let cleared = state.recorder.clear();
            reply.json(
                state,
                StatusCode::OK,
                json!({"cleared": cleared}).to_string(),
            )
        }
        (&Method::DELETE, "/__mock/faults") => {
            state.counters.reset();
            reply.json(state, StatusCode::OK, json!({"reset": true}).to_string())
        }
        _ => reply.error(
            state,
            StatusCode::NOT_FOUND,
            &format!("mock-provider: no admin endpoint {} {}", parts.method, path),
        ),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
