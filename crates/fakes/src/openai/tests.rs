//! The fake's own checks, over raw HTTP so that malformed requests can be
//! sent too.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A valid request: the shape the agent sends after one tool round.
fn valid_request() -> Value {
    json!({
        "model": "test-model",
        "messages": [
            { "role": "system", "content": "you fix bugs" },
            { "role": "user", "content": "fix it" },
            { "role": "assistant", "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": { "name": "read_file", "arguments": "{\"path\":\"a.py\"}" },
            }] },
            { "role": "tool", "tool_call_id": "call_1", "content": "1 print('hi')" },
        ],
        "tools": [{ "type": "function", "function": {
            "name": "read_file",
            "description": "read a file",
            "parameters": { "type": "object", "properties": { "path": { "type": "string" } }, "required": ["path"] },
        } }],
    })
}

/// Sends one HTTP/1.1 request and returns status and JSON body.
async fn send(fake: &FakeOpenAi, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(fake.addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         authorization: Bearer test-key\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        fake.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn chat(fake: &FakeOpenAi, body: &Value) -> (u16, Value) {
    send(fake, "POST", CHAT_COMPLETIONS, &body.to_string()).await
}

/// A valid request is answered by the script, in order, with bodies that
/// conform to the response schema; the request is recorded with its headers.
#[tokio::test]
async fn answers_from_the_script_in_order() {
    let fake = FakeOpenAi::start([
        Reply::tool_call("read_file", json!({ "path": "a.py" })),
        Reply::text("done").with_usage(7, 3),
    ])
    .await;

    let (status, first) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 200);
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let call = &first["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "read_file");
    assert_eq!(call["function"]["arguments"], r#"{"path":"a.py"}"#);
    assert_eq!(first["model"], "test-model");
    assert!(check_response(&first).is_empty());

    let (status, second) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 200);
    assert_eq!(second["choices"][0]["message"]["content"], "done");
    assert_eq!(second["usage"]["total_tokens"], 10);

    assert_eq!(fake.errors(), Vec::<String>::new());
    assert_eq!(fake.remaining(), 0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("Authorization"), Some("Bearer test-key"));
    assert_eq!(requests[0].messages().len(), 4);
}

/// A body that breaks the request schema is an error and a 500.
#[tokio::test]
async fn request_breaking_the_schema_is_an_error() {
    let fake = FakeOpenAi::start([Reply::text("never sent")]).await;
    let mut request = valid_request();
    request["messages"][1]["role"] = json!("robot");

    let (status, _) = chat(&fake, &request).await;

    assert_eq!(status, 500);
    let errors = fake.errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("breaks the request schema"),
        "{errors:?}"
    );
    assert_eq!(fake.remaining(), 1, "a bad request consumes no reply");
}

/// A request with no `messages` breaks the schema too.
#[tokio::test]
async fn request_without_messages_is_an_error() {
    let fake = FakeOpenAi::start([]).await;
    let (status, _) = chat(&fake, &json!({ "model": "m" })).await;
    assert_eq!(status, 500);
    assert_eq!(fake.errors().len(), 1);
}

/// A request beyond the end of the script is an error and a 500.
#[tokio::test]
async fn request_beyond_the_script_is_an_error() {
    let fake = FakeOpenAi::start([]).await;
    let (status, _) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 500);
    assert!(fake.errors()[0].contains("script is exhausted"));
}

/// Any other route is an unexpected request.
#[tokio::test]
async fn other_routes_are_unexpected() {
    let fake = FakeOpenAi::start([]).await;
    let (status, _) = send(&fake, "GET", "/v1/models", "").await;
    assert_eq!(status, 500);
    assert!(fake.errors()[0].contains("unexpected request GET /v1/models"));
}

/// Scripted errors carry the OpenAI error body; 429's conforms to the
/// contract's 429 schema.
#[tokio::test]
async fn scripted_errors_have_openai_error_bodies() {
    let fake = FakeOpenAi::start([Reply::rate_limited(), Reply::server_error()]).await;

    let (status, body) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, body) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");

    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A scripted body that breaks the response schema is caught before it is
/// sent.
#[tokio::test]
async fn non_conforming_response_is_an_error() {
    let fake = FakeOpenAi::start([Reply::raw_body(json!({ "id": "x", "choices": [] }))]).await;
    let (status, _) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 500);
    assert!(fake.errors()[0].contains("breaks the response schema"));
}

/// A reply without usage leaves `usage` out and still conforms.
#[tokio::test]
async fn usage_can_be_left_out() {
    let fake = FakeOpenAi::start([Reply::text("hi").without_usage()]).await;
    let (status, body) = chat(&fake, &valid_request()).await;
    assert_eq!(status, 200);
    assert!(body.get("usage").is_none());
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A hang never answers.
#[tokio::test]
async fn hang_never_answers() {
    let fake = FakeOpenAi::start([Reply::hang()]).await;
    let request = valid_request();
    let answered = tokio::time::timeout(Duration::from_millis(200), chat(&fake, &request));
    assert!(answered.await.is_err());
    assert_eq!(fake.requests().len(), 1);
}
