//! The mock provider over real HTTP: started in-process on port 0, driven by
//! hyper's client (HTTP/1.1 and h2c) and raw sockets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mock_provider::faults::FaultSpec;
use mock_provider::{Config, Server};
use model_router_core::tokens::Encoding;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(config, listener).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .retry_canceled_requests(false)
        .build_http()
}

fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .retry_canceled_requests(false)
        .http2_only(true)
        .build_http()
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `data:` payloads of an SSE body.
    fn sse_data(&self) -> Vec<String> {
        let text = self.text();
        assert!(text.ends_with("\n\n"), "{text:?}");
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap()
                    .to_string()
            })
            .collect()
    }
}

async fn send(
    client: &HttpClient,
    method: Method,
    url: String,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e:?}"))?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    send(
        &client(),
        Method::POST,
        format!("http://{addr}{path}"),
        headers,
        &body.to_string(),
    )
    .await
    .unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        &client(),
        Method::GET,
        format!("http://{addr}{path}"),
        &[],
        "",
    )
    .await
    .unwrap()
}

async fn delete(addr: SocketAddr, path: &str) -> Answer {
    send(
        &client(),
        Method::DELETE,
        format!("http://{addr}{path}"),
        &[],
        "",
    )
    .await
    .unwrap()
}

fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello to the world, please.", "name": "bob"}
        ]
    })
}

fn router_prompt_tokens(path: &str, body: &Value) -> u64 {
    let body = body.to_string();
    model_router_core::request::parse(path, body.as_bytes())
        .unwrap()
        .prompt_tokens(Encoding::O200kBase)
        .unwrap()
}

fn o200k(text: &str) -> u64 {
    model_router_core::tokens::count(Encoding::O200kBase, text).unwrap() as u64
}

#[tokio::test]
async fn chat_completion_shape_and_usage() {
    let addr = start(Config::new("p1")).await;
    let body = chat("gpt-4o");
    let answer = post(addr, "/openai/v1/chat/completions", &[], &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-mock-provider"), Some("p1"));
    assert_eq!(answer.header("x-mock-model"), Some("gpt-4o"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json = answer.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "gpt-4o");
    assert!(json["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(json["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &json["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("[p1] gpt-4o says:"), "{text}");
    let usage = &json["usage"];
    let prompt = router_prompt_tokens("/v1/chat/completions", &body);
    assert_eq!(usage["prompt_tokens"], prompt);
    assert_eq!(usage["completion_tokens"], o200k(text));
    assert_eq!(usage["completion_tokens"], 12);
    assert_eq!(usage["total_tokens"], prompt + 12);
}

#[tokio::test]
async fn completion_length_header_and_max_tokens() {
    let addr = start(Config::new("p1")).await;
    let long = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-completion-tokens", "40")],
        &chat("gpt-4o"),
    )
    .await
    .json();
    assert_eq!(long["usage"]["completion_tokens"], 40);
    let text = long["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(o200k(text), 40);

    let mut capped = chat("gpt-4o");
    capped["max_completion_tokens"] = json!(5);
    let capped = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-completion-tokens", "40")],
        &capped,
    )
    .await
    .json();
    assert_eq!(capped["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn legacy_completion() {
    let addr = start(Config::new("p1")).await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time"});
    let answer = post(addr, "/v1/completions", &[], &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["object"], "text_completion");
    let text = json["choices"][0]["text"].as_str().unwrap();
    assert_eq!(json["usage"]["completion_tokens"], o200k(text));
    assert_eq!(
        json["usage"]["prompt_tokens"],
        router_prompt_tokens("/v1/completions", &body)
    );
}

#[tokio::test]
async fn chat_stream_without_usage() {
    let addr = start(Config::new("p1")).await;
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let answer = post(addr, "/v1/chat/completions", &[], &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let data = answer.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let mut text = String::new();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk.get("usage").is_none(), "{chunk}");
        assert!(!chunk["choices"].as_array().unwrap().is_empty());
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
    }
    assert!(text.starts_with("[p1] gpt-4o-mini says:"), "{text}");
}

#[tokio::test]
async fn chat_stream_with_usage() {
    let addr = start(Config::new("p1")).await;
    let mut body = chat("gpt-4o");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = post(addr, "/v1/chat/completions", &[], &body).await;
    let data = answer.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let finish: Value = serde_json::from_str(&data[data.len() - 3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let text: String = data[..data.len() - 3]
        .iter()
        .map(|d| {
            let chunk: Value = serde_json::from_str(d).unwrap();
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let prompt = router_prompt_tokens("/v1/chat/completions", &body);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], prompt);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], o200k(&text));
    assert_eq!(usage_chunk["usage"]["total_tokens"], prompt + o200k(&text));
}

#[tokio::test]
async fn many_stream_chunks() {
    let addr = start(Config::new("p1")).await;
    let body = json!({
        "model": "gpt-4o", "prompt": "x", "stream": true,
        "stream_options": {"include_usage": true}
    });
    let answer = post(
        addr,
        "/v1/completions",
        &[("x-mock-stream-chunks", "5000")],
        &body,
    )
    .await;
    let data = answer.sse_data();
    // 5000 content chunks, the finish chunk, the usage chunk, [DONE].
    assert_eq!(data.len(), 5003);
    let text: String = data[..5000]
        .iter()
        .map(|d| {
            let chunk: Value = serde_json::from_str(d).unwrap();
            chunk["choices"][0]["text"].as_str().unwrap().to_string()
        })
        .collect();
    let usage: Value = serde_json::from_str(&data[5001]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], o200k(&text));
}

#[tokio::test]
async fn responses_and_messages() {
    let addr = start(Config::new("p1")).await;
    let body = json!({"model": "gpt-4.1", "input": "hello there"});
    let json = post(addr, "/v1/responses", &[], &body).await.json();
    assert_eq!(json["object"], "response");
    assert!(json["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let text = json["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("[p1] gpt-4.1 says:"), "{text}");
    assert_eq!(json["usage"]["output_tokens"], o200k(text));

    let mut body = body;
    body["stream"] = json!(true);
    let text = post(addr, "/v1/responses", &[], &body).await.text();
    assert!(text.starts_with("event: response.created\n"), "{text}");
    let completed = text.split("\n\n").filter(|e| !e.is_empty()).last().unwrap();
    assert!(completed.starts_with("event: response.completed\n"));
    let data: Value = serde_json::from_str(
        completed
            .lines()
            .nth(1)
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["response"]["usage"], json["usage"]);

    let body = json!({
        "model": "claude-sonnet-4", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]
    });
    let answer = post(addr, "/v1/messages", &[], &body).await;
    let text = answer.text();
    assert!(text.starts_with("event: message_start\n"));
    assert!(text.contains("event: content_block_delta\n"));
    assert!(text.contains("\"output_tokens\":"));
    assert!(text.trim_end().ends_with("{\"type\":\"message_stop\"}"));
}

#[tokio::test]
async fn invalid_body_and_unknown_path() {
    let addr = start(Config::new("p1")).await;
    let answer = send(
        &client(),
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        &[],
        "{not json",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    let answer = post(addr, "/v1/chat/completions", &[], &json!({"model": "m"})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = get(addr, "/v1/models").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn status_fault_by_model_target() {
    let addr = start(Config::new("p1")).await;
    let fault = [("x-mock-fault", "other-provider=500,gpt-4o=429,*=delay:1")];
    let answer = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o")).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), Some("0"));
    assert_eq!(answer.header("x-mock-provider"), Some("p1"));
    assert_eq!(answer.json()["error"]["type"], "rate_limit_error");
    // Another model on the same request header is served.
    let answer = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o-mini")).await;
    assert_eq!(answer.status, StatusCode::OK);
    // The provider name is a target too.
    let fault = [("x-mock-fault", "p1=503")];
    let answer = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn count_fault_then_success() {
    let addr = start(Config::new("p1")).await;
    let fault = [("x-mock-fault", "gpt-4o=count:1:503")];
    let first = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o")).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    let second = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o")).await;
    assert_eq!(second.status, StatusCode::OK);
    // DELETE /__mock/faults restarts the budget.
    assert_eq!(delete(addr, "/__mock/faults").await.status, StatusCode::OK);
    let third = post(addr, "/v1/chat/completions", &fault, &chat("gpt-4o")).await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn flag_faults_apply_to_every_request() {
    let mut config = Config::new("p9");
    config.faults = FaultSpec::parse("*=count:2:500").unwrap();
    let addr = start(config).await;
    let statuses = [
        post(addr, "/v1/chat/completions", &[], &chat("a"))
            .await
            .status,
        post(addr, "/v1/chat/completions", &[], &chat("b"))
            .await
            .status,
        post(addr, "/v1/chat/completions", &[], &chat("c"))
            .await
            .status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::OK
        ]
    );
}

const RAW_REQUEST: &str = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\
content-type: application/json\r\nx-mock-fault: FAULT\r\ncontent-length: LEN\r\n\r\nBODY";

/// Sends one HTTP/1.1 request on a raw socket; returns what came back and
/// how reading ended.
async fn raw(addr: SocketAddr, fault: &str, body: &Value) -> (Vec<u8>, std::io::Result<()>) {
    let body = body.to_string();
    let request = RAW_REQUEST
        .replace("FAULT", fault)
        .replace("LEN", &body.len().to_string())
        .replace("BODY", &body);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "no end after 5 s; got {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) => return (received, Ok(())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (received, Err(e)),
        }
    }
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let addr = start(Config::new("p1")).await;
    let (received, ended) = raw(addr, "reset", &chat("gpt-4o")).await;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(
        ended.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );

    // Through an HTTP client: an error, not a status.
    let fault = [("x-mock-fault", "gpt-4o=reset")];
    let url = format!("http://{addr}/v1/chat/completions");
    let body = chat("gpt-4o").to_string();
    let result = send(&client(), Method::POST, url.clone(), &fault, &body).await;
    assert!(result.is_err());
    // HTTP/2: the stream is reset; the connection still serves others.
    let h2 = h2_client();
    assert!(send(&h2, Method::POST, url.clone(), &fault, &body)
        .await
        .is_err());
    let fine = send(&h2, Method::POST, url, &[], &body).await.unwrap();
    assert_eq!(fine.status, StatusCode::OK);
}

#[tokio::test]
async fn reset_mid_body() {
    let addr = start(Config::new("p1")).await;
    let (received, ended) = raw(addr, "reset-mid-body", &chat("gpt-4o")).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let (head, partial) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(!partial.is_empty() && partial.len() < length);
    assert!(ended.is_err());

    let mut stream = chat("gpt-4o");
    stream["stream"] = json!(true);
    let (received, ended) = raw(addr, "reset-mid-body", &stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(ended.is_err());
}

#[tokio::test]
async fn delays_garbage_and_hang() {
    let addr = start(Config::new("p1")).await;
    let started = Instant::now();
    let fault = [("x-mock-fault", "*=delay:300")];
    let answer = post(addr, "/v1/chat/completions", &fault, &chat("m")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let fault = [("x-mock-fault", "garbage")];
    let answer = post(addr, "/v1/chat/completions", &fault, &chat("m")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());

    let fault = [("x-mock-fault", "hang")];
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        post(addr, "/v1/chat/completions", &fault, &chat("m")),
    )
    .await;
    assert!(hung.is_err(), "hang answered");

    // first-byte-delay: headers at once, events later.
    let mut body = chat("m");
    body["stream"] = json!(true);
    let request = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("x-mock-fault", "first-byte-delay:400")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let started = Instant::now();
    let response = client().request(request).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.unwrap().to_bytes();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(String::from_utf8_lossy(&collected).ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn h2c_is_served() {
    let addr = start(Config::new("p1")).await;
    let answer = send(
        &h2_client(),
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        &[],
        &chat("gpt-4o").to_string(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["usage"]["completion_tokens"], 12);
    let records = get(addr, "/__mock/requests").await.json();
    assert_eq!(records[0]["version"], "HTTP/2.0");
}

#[tokio::test]
async fn recording() {
    let addr = start(Config::new("p1")).await;
    assert_eq!(get(addr, "/__mock/health").await.status, StatusCode::OK);
    let fault = [("x-mock-fault", "gpt-4o=429"), ("x-test", "one")];
    let first = chat("gpt-4o");
    post(addr, "/v1/chat/completions?api-version=1", &fault, &first).await;
    post(
        addr,
        "/v1/completions",
        &[],
        &json!({"model": "davinci", "prompt": "x"}),
    )
    .await;
    let records = get(addr, "/__mock/requests").await.json();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r["provider"], "p1");
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/v1/chat/completions");
    assert_eq!(r["query"], "api-version=1");
    assert_eq!(r["model"], "gpt-4o");
    assert_eq!(r["fault"], "gpt-4o=429");
    let body = first.to_string();
    assert_eq!(r["body"], body.as_str());
    assert_eq!(r["body_len"], body.len());
    assert_eq!(r["content_length"], body.len().to_string());
    let headers = r["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-test", "one"])));
    assert_eq!(records[1]["model"], "davinci");
    assert!(records[1]["fault"].is_null());
    assert!(records[0]["seq"].as_u64() < records[1]["seq"].as_u64());

    assert_eq!(delete(addr, "/__mock/requests").await.json()["cleared"], 2);
    assert_eq!(get(addr, "/__mock/requests").await.json(), json!([]));
}

#[tokio::test]
async fn no_record_and_latency() {
    let mut config = Config::new("p1");
    config.record = false;
    config.latency = Duration::from_millis(200);
    let addr = start(config).await;
    let started = Instant::now();
    let answer = post(addr, "/v1/chat/completions", &[], &chat("m")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(get(addr, "/__mock/requests").await.json(), json!([]));
}
