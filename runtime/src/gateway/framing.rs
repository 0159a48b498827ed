//! How a JSON reply stream is written: newline-delimited JSON (grpc-gateway's framing),
//! Server-Sent Events, or one JSON array (Envoy's transcoder's), chosen by the request's
//! `Accept` or the gateway's default; `HttpBody` streams are their raw bytes.

use bytes::Bytes;
use http::HeaderValue;

/// How streamed replies (server streaming, bidi) are written when the request's `Accept`
/// does not choose; see
/// [`GatewayBuilder::stream_framing`](super::GatewayBuilder::stream_framing). `HttpBody`
/// replies are always their raw bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamFraming {
    /// Newline-delimited JSON (`application/x-ndjson`): `{"result": <message>}` per line,
    /// and an `{"error": <google.rpc.Status>}` line when the call fails after its first
    /// message. grpc-gateway's framing.
    #[default]
    Ndjson,
    /// One JSON array of the messages (`application/json`): `[<message>,<message>]`, `[]`
    /// for none. Envoy's transcoder's framing; it decodes straight into a list of the reply
    /// type. A call that fails after its first message aborts the response (an array
    /// cannot carry the error without looking like one more message).
    JsonArray,
    /// Server-Sent Events (`text/event-stream`): `data: <message>` per event, and an
    /// `event: error` with the Status when the call fails after its first message.
    ServerSentEvents,
}

/// The framing of a JSON reply stream: what the request's `Accept` names, else `default`.
/// Every `Accept` value counts; media types compare case-insensitively and their
/// parameters (`q` too) are ignored. NDJSON wins over SSE, since a client naming both can
/// read either. The JSON array needs `application/json` **alone**: clients send it next to
/// other types by habit (axios: `application/json, text/plain, */*`), and grpc-gateway
/// labels its NDJSON streams `application/json`, so its clients may ask for that type and
/// still read lines; only a client that accepts nothing else is asking for one document.
pub(super) fn framing_for<'a>(
    accept: impl IntoIterator<Item = &'a HeaderValue>,
    default: StreamFraming,
) -> Framing {
    let (mut ndjson, mut sse, mut json, mut others) = (false, false, false, false);
    let media_types = accept
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.split(';').next().unwrap_or("").trim())
        .filter(|media| !media.is_empty());
    for media in media_types {
        let is = |name: &str| media.eq_ignore_ascii_case(name);
        if is("application/x-ndjson") || is("application/jsonl") {
            ndjson = true;
        } else if is("text/event-stream") {
            sse = true;
        } else if is("application/json") {
            json = true;
        } else {
            others = true;
        }
    }
    let json = json && !others;
    match (ndjson, sse, json, default) {
        (true, ..) => Framing::Ndjson,
        (false, true, ..) => Framing::Sse,
        (false, false, true, _) => Framing::JsonArray,
        (.., StreamFraming::Ndjson) => Framing::Ndjson,
        (.., StreamFraming::JsonArray) => Framing::JsonArray,
        (.., StreamFraming::ServerSentEvents) => Framing::Sse,
    }
}

/// How a reply stream is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// Newline-delimited JSON: `{"result": ...}` lines, an `{"error": ...}` line.
    Ndjson,
    /// Server-Sent Events: `data:` events, an `error` event.
    Sse,
    /// A JSON array of the messages, one per line: `[{...}\n,{...}\n]`.
    JsonArray,
    /// `HttpBody` replies: their bytes back to back.
    Raw,
}

impl Framing {
    /// The content type of a stream without a first reply to name it.
    pub(super) fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Framing::Ndjson => "application/x-ndjson",
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => "application/json",
            Framing::Raw => "application/octet-stream",
        })
    }

    /// Whether a failure after the first reply can be told in the body (an error line or
    /// event). Otherwise the response is aborted, and its head waits for the first reply
    /// so that a call failing before it still gets its HTTP status and a Status body.
    pub(super) fn in_band_errors(self) -> bool {
        matches!(self, Framing::Ndjson | Framing::Sse)
    }

    /// One reply of a JSON stream; `opening` when it is the first. (Raw streams send the
    /// messages' bytes as they are.)
    pub(super) fn frame(self, opening: bool, json: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(json.len() + 24);
        match self {
            Framing::Sse => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json);
                out.extend_from_slice(b"\n\n");
            }
            // Each element ends its line, so a client reading lines gets each as it comes
            // (strip the leading `[` or `,`); the `,` goes before the next one, which the
            // stream does not know of yet.
            Framing::JsonArray => {
                out.push(if opening { b'[' } else { b',' });
                out.extend_from_slice(json);
                out.push(b'\n');
            }
            Framing::Ndjson | Framing::Raw => {
                out.extend_from_slice(b"{\"result\":");
                out.extend_from_slice(json);
                out.extend_from_slice(b"}\n");
            }
        }
        Bytes::from(out)
    }

    /// The item ending a stream whose call failed, for framings with
    /// [`in_band_errors`](Self::in_band_errors): an `{"error": ...}` line or an `error` event.
    pub(super) fn error(self, status_json: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(status_json.len() + 24);
        if self == Framing::Sse {
            out.extend_from_slice(b"event: error\ndata: ");
            out.extend_from_slice(status_json);
            out.extend_from_slice(b"\n\n");
        } else {
            out.extend_from_slice(b"{\"error\":");
            out.extend_from_slice(status_json);
            out.extend_from_slice(b"}\n");
        }
        Bytes::from(out)
    }

    /// What ends a stream that ended well, `opened` by a reply or not: a JSON array's `]`
    /// (`[]` when empty); nothing for the other framings.
    pub(super) fn end(self, opened: bool) -> Bytes {
        match (self, opened) {
            (Framing::JsonArray, true) => Bytes::from_static(b"]"),
            (Framing::JsonArray, false) => Bytes::from_static(b"[]"),
            _ => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(accept: &[&str], default: StreamFraming) -> Framing {
        let values: Vec<HeaderValue> = accept
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect();
        framing_for(&values, default)
    }

    #[test]
    fn accept_chooses_the_stream_framing() {
        let default = StreamFraming::Ndjson;
        assert_eq!(framing(&[], default), Framing::Ndjson);
        assert_eq!(framing(&["application/json"], default), Framing::JsonArray);
        assert_eq!(
            framing(&["Application/JSON; q=0.9"], default),
            Framing::JsonArray
        );
        assert_eq!(framing(&["text/event-stream"], default), Framing::Sse);
        assert_eq!(framing(&["TEXT/Event-Stream;q=1"], default), Framing::Sse);
        // Every value and every entry counts; NDJSON, then SSE, win over a JSON array.
        assert_eq!(
            framing(&["application/json", "text/event-stream"], default),
            Framing::Sse
        );
        // The array needs `application/json` alone: next to anything else it is habit
        // (axios, Spring), or a grpc-gateway client expecting its lines.
        for accept in [
            "application/json, text/plain, */*",
            "application/json, application/*+json",
        ] {
            assert_eq!(framing(&[accept], default), Framing::Ndjson, "{accept}");
        }
        assert_eq!(
            framing(&["application/json", "application/json;q=0.5"], default),
            Framing::JsonArray
        );
        assert_eq!(
            framing(&["application/json, application/x-ndjson"], default),
            Framing::Ndjson
        );
        assert_eq!(
            framing(&["text/event-stream", "application/jsonl"], default),
            Framing::Ndjson
        );
        // Wildcards and other types choose nothing; neither do near misses.
        for accept in ["*/*", "application/*", "text/plain", "application/json-seq"] {
            assert_eq!(framing(&[accept], default), Framing::Ndjson, "{accept}");
        }
    }

    #[test]
    fn the_default_applies_when_accept_does_not_choose() {
        for (default, expected) in [
            (StreamFraming::Ndjson, Framing::Ndjson),
            (StreamFraming::JsonArray, Framing::JsonArray),
            (StreamFraming::ServerSentEvents, Framing::Sse),
        ] {
            assert_eq!(framing(&[], default), expected, "{default:?}");
            assert_eq!(framing(&["*/*"], default), expected, "{default:?}");
        }
        let default = StreamFraming::JsonArray;
        assert_eq!(framing(&["application/x-ndjson"], default), Framing::Ndjson);
        assert_eq!(framing(&["text/event-stream"], default), Framing::Sse);
        let default = StreamFraming::ServerSentEvents;
        assert_eq!(framing(&["application/json"], default), Framing::JsonArray);
    }

    #[test]
    fn a_json_array_is_valid_json_however_long() {
        let framing = Framing::JsonArray;
        assert_eq!(framing.end(false), "[]");
        let mut body = Vec::new();
        for (i, json) in [&b"{\"a\":1}"[..], b"2", b"\"x\""].into_iter().enumerate() {
            body.extend_from_slice(&framing.frame(i == 0, json));
        }
        body.extend_from_slice(&framing.end(true));
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, serde_json::json!([{"a": 1}, 2, "x"]));
        // One element per line, for clients reading lines.
        assert_eq!(body, b"[{\"a\":1}\n,2\n,\"x\"\n]");
        assert!(!framing.in_band_errors());
        assert_eq!(framing.content_type(), "application/json");
    }
}
