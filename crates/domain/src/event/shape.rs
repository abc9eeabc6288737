//! Recognising the wrapping a Sentry event arrives in, and unwrapping it.
//!
//! One HTTP body can be an SDK event, an integration-platform webhook
//! (`{action, installation, data: {event | error | issue | ...}, actor}`) or a
//! legacy WebHooks plugin delivery (`{id, project, url, ..., event}`). This is
//! the only place that knows those envelopes; [`super::parse`] reads the event
//! inside. It fails only when there is no event to read: the body is not a
//! JSON object, or it is a webhook that carries none (`issue.*`, `comment.*`,
//! `installation.*`, ...), which the caller should acknowledge, not diagnose.

use serde_json::{Map, Value};

use super::parse::{event_from_value, issue_id_from_url, issue_id_from_value, kind};
use super::{EventShape, ParsedEvent};

/// Why a body holds no event to read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The bytes are not JSON (or not UTF-8).
    #[error("body is not json")]
    NotJson(#[source] serde_json::Error),
    /// Valid JSON, but not an object.
    #[error("body is json but not an object: found {found}")]
    NotAnObject {
        /// The JSON kind found instead, e.g. `an array`.
        found: &'static str,
    },
    /// An integration webhook of a resource that carries no event, e.g.
    /// `issue.created` or `comment.created`.
    #[error("{resource}.{action} webhook carries no event: only error and event_alert webhooks do")]
    WebhookWithoutEvent {
        /// The resource inferred from `data` (`issue`, `comment`, ... or `unknown`).
        resource: String,
        /// The webhook's `action`.
        action: String,
    },
    /// The place that should hold the event holds something else.
    #[error("`{path}` is not an event object: found {found}")]
    EventNotAnObject {
        /// Where the event was expected, e.g. `data.event`.
        path: &'static str,
        /// The JSON kind found instead.
        found: &'static str,
    },
}

/// Detects the shape (SDK event JSON as sent to `/store/` or in an envelope
/// `event` item; integration-platform webhook body
/// `{action, installation, data: {event | error}, actor}`; legacy WebHooks
/// plugin `{id, project, ..., event: {...}}`) and returns the event in it.
///
/// Webhooks also give `upstream_issue_id`: from the event's own `issue_id`,
/// `data.issue_id`, or the `issue_url`/`web_url` (integration webhooks), or the
/// body's `id`/`url` (legacy plugin).
pub fn parse_event(bytes: &[u8]) -> Result<ParsedEvent, EventError> {
    let body = object_from_slice(bytes)?;
    if is_integration_webhook(&body) {
        integration_webhook(body)
    } else if body.get("event").is_some_and(Value::is_object) {
        Ok(legacy_webhook_plugin(body))
    } else {
        Ok(sdk_event(body))
    }
}

/// Reads bytes known to be an SDK event (a `/store/` body, an envelope `event`
/// item), without guessing at webhook wrappings.
pub fn parse_sdk_event(bytes: &[u8]) -> Result<ParsedEvent, EventError> {
    object_from_slice(bytes).map(sdk_event)
}

fn object_from_slice(bytes: &[u8]) -> Result<Map<String, Value>, EventError> {
    match serde_json::from_slice(bytes).map_err(EventError::NotJson)? {
        Value::Object(body) => Ok(body),
        other => Err(EventError::NotAnObject {
            found: kind(&other),
        }),
    }
}

fn sdk_event(body: Map<String, Value>) -> ParsedEvent {
    let (event, problems) = event_from_value(Value::Object(body));
    ParsedEvent {
        event,
        shape: EventShape::SdkEvent,
        problems,
    }
}

/// `action` is a string and `data` or `installation` is there: no SDK event
/// has `action`, and webhooks always have both.
fn is_integration_webhook(body: &Map<String, Value>) -> bool {
    body.get("action").is_some_and(Value::is_string)
        && (body.contains_key("data") || body.contains_key("installation"))
}

fn integration_webhook(mut body: Map<String, Value>) -> Result<ParsedEvent, EventError> {
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut data = match body.shift_remove("data") {
        Some(Value::Object(data)) => data,
        _ => Map::new(),
    };
    let resource = resource_of(&data).to_owned();
    let (event, path) = match (
        take_non_null(&mut data, "error"),
        take_non_null(&mut data, "event"),
    ) {
        (Some(event), _) => (event, "data.error"),
        (None, Some(event)) => (event, "data.event"),
        (None, None) => return Err(EventError::WebhookWithoutEvent { resource, action }),
    };
    if !event.is_object() {
        return Err(EventError::EventNotAnObject {
            path,
            found: kind(&event),
        });
    }
    let (mut event, problems) = event_from_value(event);
    if event.upstream_issue_id.is_none() {
        event.upstream_issue_id = data.get("issue_id").and_then(issue_id_from_value);
    }
    Ok(ParsedEvent {
        event,
        shape: EventShape::IntegrationWebhook { resource, action },
        problems,
    })
}

/// The `Sentry-Hook-Resource` a webhook was sent for, from what its `data` holds.
fn resource_of(data: &Map<String, Value>) -> &'static str {
    const KEYS: [(&str, &str); 7] = [
        ("error", "error"),
        ("event", "event_alert"),
        ("issue", "issue"),
        ("comment", "comment"),
        ("metric_alert", "metric_alert"),
        ("installation", "installation"),
        ("run_id", "seer"),
    ];
    KEYS.iter()
        .find(|(key, _)| data.contains_key(*key))
        .map_or("unknown", |(_, resource)| resource)
}

fn take_non_null(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    map.shift_remove(key).filter(|value| !value.is_null())
}

fn legacy_webhook_plugin(mut body: Map<String, Value>) -> ParsedEvent {
    let event = body.shift_remove("event").unwrap_or_default();
    let (mut event, problems) = event_from_value(event);
    if event.upstream_issue_id.is_none() {
        // The plugin's `id` is the group (issue) id, and `url` its web page.
        event.upstream_issue_id = body
            .get("id")
            .and_then(issue_id_from_value)
            .or_else(|| issue_id_from_url(body.get("url")?.as_str()?));
    }
    ParsedEvent {
        event,
        shape: EventShape::LegacyWebhookPlugin,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::event::{Event, Frame, debug_render};

    macro_rules! fixture {
        ($path:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/",
                $path
            ))
        };
    }

    /// Every Sentry fixture these tests read; `every_fixture_is_tested` keeps
    /// this list in step with the directories.
    const FIXTURES: [&str; 14] = [
        "fixtures/sentry-integration/comment.created.json",
        "fixtures/sentry-integration/error.created.json",
        "fixtures/sentry-integration/event_alert.triggered.json",
        "fixtures/sentry-integration/event_alert.triggered.node.json",
        "fixtures/sentry-integration/event_alert.triggered.python.json",
        "fixtures/sentry-integration/issue.created.json",
        "fixtures/sentry-integration/issue.resolved.json",
        "fixtures/sentry-legacy-webhooks/webhooks-plugin.python.json",
        "bench/dev/events/fastapi-7.json",
        "bench/dev/events/httpie-3.json",
        "bench/dev/events/luigi-22.json",
        "bench/dev/events/luigi-25.json",
        "bench/dev/events/scrapy-18.json",
        "bench/dev/events/scrapy-2.json",
    ];

    fn check(bytes: &[u8], expect: Expect) -> ParsedEvent {
        let parsed = parse_event(bytes).unwrap();
        let rendered = format!(
            "shape: {:?}\n{}",
            parsed.shape,
            debug_render(&parsed.event, &parsed.problems)
        );
        expect.assert_eq(&rendered);
        parsed
    }

    fn crash_frame(event: &Event) -> &Frame {
        event.crash_frames()[0]
    }

    /// A new fixture file must get a test here.
    #[test]
    fn every_fixture_is_tested() {
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/");
        let mut on_disk = Vec::new();
        for dir in [
            "fixtures/sentry-integration",
            "fixtures/sentry-legacy-webhooks",
            "bench/dev/events",
        ] {
            for entry in std::fs::read_dir(format!("{shared}{dir}")).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".json") {
                    on_disk.push(format!("{dir}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut tested = FIXTURES.map(str::to_owned).to_vec();
        tested.sort();
        assert_eq!(on_disk, tested);
    }

    /// The docs' `error.created` example: a browser ReferenceError, tags as
    /// pairs, float `timestamp`, issue id inside the event.
    #[test]
    fn integration_error_created() {
        let parsed = check(
            fixture!("fixtures/sentry-integration/error.created.json"),
            expect![[r#"
                shape: IntegrationWebhook { resource: "error", action: "created" }
                title: ReferenceError: blooopy is not defined
                event_id: bb78c1407cea4519aa397afc059c793d  timestamp: 2019-08-19T20:58:37.391Z
                platform: javascript  level: error  release: -  environment: -  issue: 1170820242
                fingerprint: ["{{ default }}"]
                tags: browser=Chrome 75.0.3770, browser.name=Chrome, handled=no, level=error, mechanism=onerror, os=Mac OS X 10.14.0, os.name=Mac OS X, user=ip:162.217.75.90, url=https://null.jsbin.com/runner
                exception[0]: ReferenceError "blooopy is not defined" module=- mechanism={"data":{"message":"blooopy is not defined","mode":"stack","name":"ReferenceError"},"description":null,"handled":false,"help_link":null,"meta":null,"synthetic":null,"type":"onerror"} frames=1 in_app=F
                crash frames (1, newest first):
                  ? at https://null.jsbin.com/runner:3:5 in_app=false
                other: _ref, _ref_version, contexts, culprit, datetime, dist, grouping_config, hashes, issue_url, issue_id, key_id, location, logger, metadata, project, received, request, sdk, time_spent, title, type, url, user, version, web_url
            "#]],
        );
        let event = &parsed.event;
        assert_eq!(
            parsed.shape,
            EventShape::IntegrationWebhook {
                resource: "error".into(),
                action: "created".into()
            }
        );
        assert!(parsed.problems.is_empty());
        assert_eq!(event.upstream_issue_id.as_deref(), Some("1170820242"));
        assert_eq!(event.tags.len(), 9);
        assert_eq!(event.tags[2], ("handled".to_owned(), "no".to_owned()));
        let frame = crash_frame(event);
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("https://null.jsbin.com/runner")
        );
        assert_eq!(
            (
                frame.lineno,
                frame.colno,
                frame.in_app,
                frame.function.as_deref()
            ),
            (Some(3), Some(5), Some(false), None)
        );
        assert_eq!(frame.pre_context, ["<!doctype html>", "<html>"]);
        assert_eq!(frame.post_context.len(), 5);
        assert_eq!(frame.other["data"], serde_json::json!({"orig_in_app": 1}));
    }

    /// The docs' `event_alert.triggered` example: three frames, newest last.
    #[test]
    fn integration_event_alert_triggered() {
        let parsed = check(
            fixture!("fixtures/sentry-integration/event_alert.triggered.json"),
            expect![[r#"
                shape: IntegrationWebhook { resource: "event_alert", action: "triggered" }
                title: ReferenceError: heck is not defined
                event_id: e4874d664c3540c1a32eab185f12c5ab  timestamp: 2019-08-19T21:06:17.677Z
                platform: javascript  level: error  release: -  environment: -  issue: 1117540176
                fingerprint: ["{{ default }}"]
                tags: browser=Chrome 75.0.3770, browser.name=Chrome, handled=no, level=error, mechanism=onerror, os=Mac OS X 10.14.0, os.name=Mac OS X, user=ip:162.217.75.90, url=https://null.jsbin.com/runner
                exception[0]: ReferenceError "heck is not defined" module=- mechanism={"data":{"message":"heck is not defined","mode":"stack","name":"ReferenceError"},"description":null,"handled":false,"help_link":null,"meta":null,"synthetic":null,"type":"onerror"} frames=3 in_app=FFF
                crash frames (3, newest first):
                  ? at <anonymous>:3:5 in_app=false
                  ? at https://static.jsbin.com/js/prod/runner-4.1.7.min.js:1:13924 in_app=false
                  ? at https://static.jsbin.com/js/prod/runner-4.1.7.min.js:1:10866 in_app=false
                other: _ref, _ref_version, contexts, culprit, datetime, dist, grouping_config, hashes, issue_url, issue_id, key_id, location, logger, metadata, project, received, request, sdk, time_spent, title, type, url, user, version, web_url
            "#]],
        );
        let event = &parsed.event;
        assert_eq!(
            event.exceptions[0]
                .stacktrace
                .as_ref()
                .unwrap()
                .frames
                .len(),
            3
        );
        let frame = crash_frame(event);
        assert_eq!(
            (frame.abs_path.as_deref(), frame.lineno, frame.colno),
            (Some("<anonymous>"), Some(3), Some(5))
        );
        assert_eq!(event.upstream_issue_id.as_deref(), Some("1117540176"));
    }

    /// A real node delivery: in-app frames in the middle of library ones;
    /// no `issue_id`, so the id comes from `web_url`/`issue_url`.
    #[test]
    fn integration_event_alert_node() {
        let parsed = check(
            fixture!("fixtures/sentry-integration/event_alert.triggered.node.json"),
            expect![[r#"
                shape: IntegrationWebhook { resource: "event_alert", action: "triggered" }
                title: Error: Sample error from node.
                event_id: f9cb0f2afff74a5aa92e766fb7ac3fe3  timestamp: 2020-04-30T06:19:33.562812Z
                platform: node  level: error  release: -  environment: -  issue: 1638852747
                fingerprint: ["{{ default }}"]
                tags: handled=yes, level=error, mechanism=generic
                exception[0]: Error "Sample error from node." module=- mechanism={"synthetic":null,"help_link":null,"type":"generic","meta":null,"handled":true,"data":null,"description":null} frames=10 in_app=FFFFFTFFFT
                crash frames (10, newest first):
                  null.<anonymous> at /home/hemanth/Desktop/sentry/trigger-exception.js:11:27 in_app=true
                  Hub.withScope at /home/hemanth/Desktop/sentry/node_modules/@sentry/hub/dist/hub.js:103:13 in_app=false
                  callOnHub at /home/hemanth/Desktop/sentry/node_modules/@sentry/minimal/dist/index.js:17:28 in_app=false
                  ... 7 more
                other: project, dist, datetime, _metrics, culprit, errors, grouping_config, hashes, key_id, location, logger, metadata, received, sdk, title, type, version, url, web_url, issue_url
            "#]],
        );
        let event = &parsed.event;
        assert_eq!(event.upstream_issue_id.as_deref(), Some("1638852747"));
        let frame = crash_frame(event);
        assert_eq!(frame.function.as_deref(), Some("null.<anonymous>"));
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/home/hemanth/Desktop/sentry/trigger-exception.js")
        );
        assert_eq!(
            (frame.lineno, frame.colno, frame.in_app),
            (Some(11), Some(27), Some(true))
        );
        assert_eq!(
            frame.context_line.as_deref(),
            Some("  Sentry.captureException(new Error('Sample error from node.'));")
        );
        let in_app: Vec<_> = event.crash_frames().iter().map(|f| f.in_app).collect();
        assert_eq!(
            in_app
                .iter()
                .filter(|in_app| **in_app == Some(true))
                .count(),
            2
        );
        assert_eq!(event.crash_frames()[4].lineno, Some(7));
    }

    /// A real Python delivery: one frame, `vars` kept, datetime string too.
    #[test]
    fn integration_event_alert_python() {
        let parsed = check(
            fixture!("fixtures/sentry-integration/event_alert.triggered.python.json"),
            expect![[r#"
                shape: IntegrationWebhook { resource: "event_alert", action: "triggered" }
                title: Exception: Custom exception!
                event_id: 599349254a1447a99774b5310711c1a8  timestamp: 2020-04-28T13:56:05.903736Z
                platform: python  level: error  release: -  environment: -  issue: 1635244907
                fingerprint: ["{{ default }}"]
                tags: level=error, runtime=CPython 3.6.9, runtime.name=CPython, server_name=hp-pavilion
                exception[0]: Exception "Custom exception!" module=- mechanism=- frames=1 in_app=F
                crash frames (1, newest first):
                  <module> at /home/hemanth/Desktop/sentry/trigger-exception.py:7 in_app=false
                other: project, dist, datetime, _meta, _metrics, contexts, culprit, extra, grouping_config, hashes, key_id, location, logger, metadata, modules, received, sdk, title, type, version, url, web_url, issue_url
            "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(frame.function.as_deref(), Some("<module>"));
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/home/hemanth/Desktop/sentry/trigger-exception.py")
        );
        assert_eq!((frame.lineno, frame.in_app), (Some(7), Some(false)));
        assert!(frame.other["vars"].is_object());
        assert_eq!(
            parsed.event.upstream_issue_id.as_deref(),
            Some("1635244907")
        );
    }

    /// Issue and comment webhooks carry no event: a precise error, not a guess.
    #[test]
    fn webhooks_without_event() {
        let error = |bytes: &[u8]| parse_event(bytes).unwrap_err().to_string();
        expect![[
            r#"issue.created webhook carries no event: only error and event_alert webhooks do"#
        ]]
        .assert_eq(&error(fixture!(
            "fixtures/sentry-integration/issue.created.json"
        )));
        expect![[
            r#"issue.resolved webhook carries no event: only error and event_alert webhooks do"#
        ]]
        .assert_eq(&error(fixture!(
            "fixtures/sentry-integration/issue.resolved.json"
        )));
        expect![[
            r#"comment.created webhook carries no event: only error and event_alert webhooks do"#
        ]]
        .assert_eq(&error(fixture!(
            "fixtures/sentry-integration/comment.created.json"
        )));
        let error = parse_event(fixture!("fixtures/sentry-integration/comment.created.json"));
        let Err(EventError::WebhookWithoutEvent { resource, action }) = error else {
            panic!("expected WebhookWithoutEvent, got {error:?}");
        };
        assert_eq!((resource.as_str(), action.as_str()), ("comment", "created"));
    }

    /// The legacy WebHooks plugin: the event under `event`, the issue id in
    /// the body's `id`.
    #[test]
    fn legacy_webhooks_plugin() {
        let parsed = check(
            fixture!("fixtures/sentry-legacy-webhooks/webhooks-plugin.python.json"),
            expect![[r#"
                shape: LegacyWebhookPlugin
                title: ValueError: new sentry error.
                event_id: c916dccfd58e41dcabaebef0091f0736  timestamp: 2020-10-21T23:25:11.147672Z
                platform: python  level: error  release: -  environment: -  issue: 1972208801
                fingerprint: ["{{ default }}"]
                tags: level=error, runtime=CPython 3.8.5, runtime.name=CPython, server_name=enterprise
                exception[0]: ValueError "new sentry error." module=- mechanism=- frames=1 in_app=F
                crash frames (1, newest first):
                  <module> at /home/user/software/bar/bar-foo/data/trigger-exception.py:10 in_app=false
                other: extra, _ref_version, _ref, id, _metrics, culprit, title, grouping_config, version, location, logger, type, metadata, hashes, sdk, received, _meta, contexts, modules, project, key_id
            "#]],
        );
        assert_eq!(parsed.shape, EventShape::LegacyWebhookPlugin);
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno),
            (Some("<module>"), Some(10))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/home/user/software/bar/bar-foo/data/trigger-exception.py")
        );
        assert_eq!(
            parsed.event.upstream_issue_id.as_deref(),
            Some("1972208801")
        );
    }

    /// sentry-sdk 2.75 events: 32 frames, `in_app` absent on stdlib frames.
    #[test]
    fn sdk_fastapi_7() {
        let parsed = check(
            fixture!("bench/dev/events/fastapi-7.json"),
            expect![[r#"
            shape: SdkEvent
            title: TypeError: Object of type Decimal is not JSON serializable
            event_id: 473d6f932d4b4b2ca0563eddc0a87aa8  timestamp: 2026-11-23T15:01:16.160903Z
            platform: python  level: error  release: 37866a216ec82b2c878bb371092fb91ad8345034  environment: production  issue: -
            exception[0]: TypeError "Object of type Decimal is not JSON serializable" module=- mechanism={"type":"generic","handled":true} frames=32 in_app=FFFFFFFFFFFFTFFFFFF-TFFFFTFF----
            crash frames (32, newest first):
              default at /usr/local/lib/python3.11/json/encoder.py:180 in_app=-
              iterencode at /usr/local/lib/python3.11/json/encoder.py:258 in_app=-
              encode at /usr/local/lib/python3.11/json/encoder.py:200 in_app=-
              ... 29 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let event = &parsed.event;
        assert_eq!(parsed.shape, EventShape::SdkEvent);
        assert_eq!(event.crash_frames().len(), 32);
        let frame = crash_frame(event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno, frame.in_app),
            (Some("default"), Some(180), None)
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/usr/local/lib/python3.11/json/encoder.py")
        );
        let first_in_app = event
            .crash_frames()
            .into_iter()
            .find(|f| f.in_app == Some(true))
            .unwrap();
        assert_eq!(
            first_in_app.abs_path.as_deref(),
            Some("/srv/app/fastapi/exception_handlers.py")
        );
        assert_eq!(first_in_app.lineno, Some(21));
        assert_eq!(
            event.release.as_deref(),
            Some("37866a216ec82b2c878bb371092fb91ad8345034")
        );
        assert!(event.tags.is_empty());
    }

    #[test]
    fn sdk_httpie_3() {
        let parsed = check(
            fixture!("bench/dev/events/httpie-3.json"),
            expect![[r#"
            shape: SdkEvent
            title: AttributeError: 'NoneType' object has no attribute 'decode'
            event_id: 22ffa370b1bb41cb9609b23048f1c89f  timestamp: 2026-11-23T14:58:10.583336Z
            platform: python  level: error  release: 3ba131b7454ef4b6ad09ca79fad626b03a50c411  environment: production  issue: -
            exception[0]: AttributeError "'NoneType' object has no attribute 'decode'" module=- mechanism={"type":"generic","handled":true} frames=18 in_app=FFFFFFFFFFFFTTTTTT
            crash frames (18, newest first):
              update_headers at /srv/app/httpie/sessions.py:104 in_app=true
              get_response at /srv/app/httpie/sessions.py:52 in_app=true
              get_response at /srv/app/httpie/client.py:50 in_app=true
              ... 15 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno, frame.in_app),
            (Some("update_headers"), Some(104), Some(true))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/srv/app/httpie/sessions.py")
        );
    }

    #[test]
    fn sdk_luigi_22() {
        let parsed = check(
            fixture!("bench/dev/events/luigi-22.json"),
            expect![[r#"
            shape: SdkEvent
            title: TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'
            event_id: 5430e1cf0c214997b0e58f843405293f  timestamp: 2026-11-23T15:07:36.167699Z
            platform: python  level: error  release: a10648d442f4ae8920a5db8ee162b534f22f7211  environment: production  issue: -
            exception[0]: TypeError "unsupported operand type(s) for +: 'NoneType' and 'int'" module=- mechanism={"type":"generic","handled":true} frames=5 in_app=---TT
            crash frames (5, newest first):
              prune at /srv/app/luigi/scheduler.py:245 in_app=true
              test_worker_prune_after_init at /srv/app/test/scheduler_test.py:108 in_app=true
              _callTestMethod at /usr/local/lib/python3.11/unittest/case.py:579 in_app=-
              ... 2 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno),
            (Some("prune"), Some(245))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/srv/app/luigi/scheduler.py")
        );
    }

    #[test]
    fn sdk_luigi_25() {
        let parsed = check(
            fixture!("bench/dev/events/luigi-25.json"),
            expect![[r#"
            shape: SdkEvent
            title: TypeError: 'str' object is not callable
            event_id: 659803c0a8b14964b9ce6bbade3e7809  timestamp: 2026-11-23T15:07:43.119920Z
            platform: python  level: error  release: d2124c89e7e3350a941134653af81de24299dfc2  environment: production  issue: -
            exception[0]: TypeError "'str' object is not callable" module=- mechanism={"type":"generic","handled":true} frames=6 in_app=---FTT
            crash frames (6, newest first):
              run at /srv/app/luigi/contrib/redshift.py:166 in_app=true
              test_s3_copy_to_table at /srv/app/test/contrib/redshift_test.py:55 in_app=true
              patched at /srv/venv/lib/python3.11/site-packages/mock/mock.py:1468 in_app=false
              ... 3 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno),
            (Some("run"), Some(166))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/srv/app/luigi/contrib/redshift.py")
        );
    }

    #[test]
    fn sdk_scrapy_18() {
        let parsed = check(
            fixture!("bench/dev/events/scrapy-18.json"),
            expect![[r#"
            shape: SdkEvent
            title: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xb5 in position 24: invalid start byte
            event_id: 2b05be96fb4c4036bc6c16d7264d6bb7  timestamp: 2026-11-23T15:03:33.380613Z
            platform: python  level: error  release: 583e1960a504c8a8b1ed83c651b8da9aa650a3fe  environment: production  issue: -
            exception[0]: UnicodeDecodeError "'utf-8' codec can't decode byte 0xb5 in position 24: invalid start byte" module=- mechanism={"type":"generic","handled":true} frames=7 in_app=---TTTT
            crash frames (7, newest first):
              to_unicode at /srv/app/scrapy/utils/python.py:107 in_app=true
              to_native_str at /srv/app/scrapy/utils/python.py:129 in_app=true
              from_content_disposition at /srv/app/scrapy/responsetypes.py:62 in_app=true
              ... 4 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno),
            (Some("to_unicode"), Some(107))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/srv/app/scrapy/utils/python.py")
        );
    }

    #[test]
    fn sdk_scrapy_2() {
        let parsed = check(
            fixture!("bench/dev/events/scrapy-2.json"),
            expect![[r#"
            shape: SdkEvent
            title: TypeError: '>=' not supported between instances of 'int' and 'NoneType'
            event_id: 993eacd345a142179856b77bb13a16ec  timestamp: 2026-11-23T15:03:22.999325Z
            platform: python  level: error  release: d20162276279913743d7d134d1b6762f54840aca  environment: production  issue: -
            exception[0]: TypeError "'>=' not supported between instances of 'int' and 'NoneType'" module=- mechanism={"type":"generic","handled":true} frames=5 in_app=---TT
            crash frames (5, newest first):
              __setitem__ at /srv/app/scrapy/utils/datatypes.py:318 in_app=true
              test_cache_without_limit at /srv/app/tests/test_utils_datatypes.py:264 in_app=true
              _callTestMethod at /usr/local/lib/python3.9/unittest/case.py:550 in_app=-
              ... 2 more
            other: contexts, transaction_info, breadcrumbs, extra, modules, server_name, sdk
        "#]],
        );
        let frame = crash_frame(&parsed.event);
        assert_eq!(
            (frame.function.as_deref(), frame.lineno),
            (Some("__setitem__"), Some(318))
        );
        assert_eq!(
            frame.abs_path.as_deref(),
            Some("/srv/app/scrapy/utils/datatypes.py")
        );
    }

    /// Every fixture that carries an event reads without a single problem.
    #[test]
    fn fixtures_read_cleanly() {
        for name in FIXTURES {
            let path = format!("{}/../../../shared/{name}", env!("CARGO_MANIFEST_DIR"));
            match parse_event(&std::fs::read(&path).unwrap()) {
                Ok(parsed) => assert!(parsed.problems.is_empty(), "{name}: {:?}", parsed.problems),
                Err(error) => assert!(
                    matches!(error, EventError::WebhookWithoutEvent { .. }),
                    "{name}: {error}"
                ),
            }
        }
    }

    /// Bodies that hold no event fail with the precise reason.
    #[test]
    fn errors() {
        let error = |bytes: &[u8]| parse_event(bytes).unwrap_err().to_string();
        assert_eq!(error(b"not json"), "body is not json");
        assert_eq!(
            error(b"[1]"),
            "body is json but not an object: found an array"
        );
        assert_eq!(error(b"null"), "body is json but not an object: found null");
        assert_eq!(
            error(br#"{"action":"triggered","data":{"event":"oops"}}"#),
            "`data.event` is not an event object: found a string"
        );
        assert_eq!(
            error(br#"{"action":"created","data":{"error":[]}}"#),
            "`data.error` is not an event object: found an array"
        );
        assert_eq!(
            error(
                br#"{"action":"created","installation":{"uuid":"u"},"data":{"installation":{}}}"#
            ),
            "installation.created webhook carries no event: only error and event_alert webhooks do"
        );
        assert_eq!(
            error(br#"{"action":"created","data":{"event":null}}"#),
            "event_alert.created webhook carries no event: only error and event_alert webhooks do"
        );
        assert_eq!(
            error(br#"{"action":"x","data":5}"#),
            "unknown.x webhook carries no event: only error and event_alert webhooks do"
        );
        assert!(matches!(
            parse_sdk_event(b"\"s\""),
            Err(EventError::NotAnObject { found: "a string" })
        ));
    }

    /// An SDK event that happens to have an `action` key but no webhook keys
    /// is still an SDK event; `data.issue_id` fills the issue id.
    #[test]
    fn shape_edges() {
        let parsed = parse_event(br#"{"action":"checkout","message":"m"}"#).unwrap();
        assert_eq!(parsed.shape, EventShape::SdkEvent);
        assert_eq!(parsed.event.other["action"], "checkout");

        let parsed =
            parse_event(br#"{"action":"triggered","data":{"event":{"message":"m"},"issue_id":7}}"#)
                .unwrap();
        assert_eq!(parsed.event.upstream_issue_id.as_deref(), Some("7"));

        let parsed = parse_sdk_event(br#"{"event":{"message":"inner"}}"#).unwrap();
        assert_eq!(parsed.shape, EventShape::SdkEvent);
        assert_eq!(parsed.event.message, None);
    }
}
