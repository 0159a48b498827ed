//! Streamed requests (client and bidi streaming): the HTTP body read as newline-delimited
//! JSON, one request message per line, and turned into gRPC frames as the lines arrive.
//!
//! [`LineMessages`] is the gRPC request body itself: it pulls the HTTP body only when the
//! gRPC side asks for the next message, so a slow service slows the HTTP client down
//! (flow control end to end) and no more than one line (plus what the last HTTP chunk
//! held) is ever buffered. A line is decoded and sent as soon as its `\n` arrives; the
//! last line may end without one.
//!
//! Lines at hand go out together: every complete line already received becomes one chunk
//! of frames (up to [`BATCH_BYTES`], tonic's own yield threshold), not a chunk each. An
//! HTTP/2 server counts small DATA frames it has not yet handed on against a budget and
//! closes the connection when it runs out (h2 0.4.20's flood guard, `too_many_data_frames`):
//! a chunk a line, with a fast client and short lines, did that to a tonic upstream at about
//! 2,500 lines. Nothing waits for a batch to fill; lines still go as soon as they arrive.
//!
//! A bad line ends the request stream with an error, which cancels the call on either
//! transport (the in-process server sees the error in its request stream; a channel
//! resets the HTTP/2 stream). What went wrong is also handed to the reply side through
//! [`InputWatch`], because the service only sees "the request stream failed" and
//! answers with a status of its own (or nothing, if it stopped reading): the HTTP client
//! should learn which line was bad.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut as _, Bytes, BytesMut};
use http::StatusCode;
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::body::Body;
use tonic::{Code, Status};

use super::grpc::Failure;
use super::json::JsonReader;

/// The most frames sent as one chunk, in bytes: tonic's yield threshold (a line that is
/// longer still goes whole).
const BATCH_BYTES: usize = 32 * 1024;

/// The gRPC request body of a streaming-request call, read from an NDJSON HTTP body, and
/// the watch on its failure.
pub(crate) fn messages(
    body: Body,
    json: JsonReader,
    max_line: usize,
) -> (LineMessages, InputWatch) {
    let (failed, watch) = oneshot::channel();
    let messages = LineMessages {
        body,
        buffer: BytesMut::new(),
        scanned: 0,
        line: 0,
        ended: false,
        done: false,
        json,
        max_line,
        failed: Some(failed),
        failing: None,
    };
    (messages, InputWatch(Some(watch)))
}

/// NDJSON lines in, gRPC frames (5-byte prefix, encoded message) out.
#[derive(Debug)]
pub(crate) struct LineMessages {
    /// The HTTP request body.
    body: Body,
    /// Bytes received and not yet taken as lines.
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no `\n`, so each byte is searched once.
    scanned: usize,
    /// The number of the last line taken (1-based; blank lines count, so errors name the
    /// line a person sees in the file they sent).
    line: usize,
    /// The HTTP body has ended; what is left in `buffer` is the last line.
    ended: bool,
    /// Every message was sent, or the stream failed: nothing more comes.
    done: bool,
    /// Reads each line as a message of the method's input type.
    json: JsonReader,
    /// The largest line accepted, in bytes, without its line ending.
    max_line: usize,
    /// Tells the reply side why the stream failed; taken on the first failure.
    failed: Option<oneshot::Sender<Failure>>,
    /// A bad line met after good ones in the same batch: the good ones go first, then this.
    failing: Option<Failure>,
}

impl LineMessages {
    /// Ends the stream with `failure`: the reply side learns it first, then the gRPC side
    /// gets an error (which cancels the call).
    fn fail(&mut self, failure: Failure) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        self.done = true;
        let status = Status::new(failure.code, failure.message.clone());
        if let Some(failed) = self.failed.take() {
            // The reply side may be gone already (the call ended); nothing left to tell.
            let _ = failed.send(failure);
        }
        Poll::Ready(Some(Err(status)))
    }

    /// The next complete line in the buffer (without its `\n`), or the last one once the
    /// body has ended.
    fn take_line(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let newline = self.buffer[self.scanned..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| self.scanned + at);
        match newline {
            Some(at) => {
                let line = self.buffer.split_to(at + 1);
                self.scanned = 0;
                Some(line.freeze().slice(..at))
            }
            None if self.ended => {
                self.done = true;
                (!self.buffer.is_empty()).then(|| self.buffer.split().freeze())
            }
            None => {
                self.scanned = self.buffer.len();
                None
            }
        }
    }

    /// Appends `line` (without its `\n`) to `out` as a gRPC frame; nothing for a blank line.
    fn encode_line(&self, line: &[u8], out: &mut BytesMut) -> Result<(), Failure> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max_line {
            return Err(self.too_long());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let message = self.json.read_json(line).map_err(|e| {
            Failure::new(
                Code::InvalidArgument,
                format!("line {}: invalid JSON request message: {e}", self.line),
            )
        })?;
        let len = message.encoded_len();
        out.reserve(5 + len);
        out.put_u8(0);
        out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        message
            .encode(out)
            .map_err(|e| Failure::new(Code::Internal, format!("line {}: {e}", self.line)))
    }

    fn too_long(&self) -> Failure {
        Failure::new(
            Code::ResourceExhausted,
            format!(
                "line {}: request message exceeds the limit of {} bytes",
                self.line, self.max_line
            ),
        )
        .http(StatusCode::PAYLOAD_TOO_LARGE)
    }
}

impl http_body::Body for LineMessages {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(failure) = this.failing.take() {
                return this.fail(failure);
            }
            let mut batch = BytesMut::new();
            while batch.len() < BATCH_BYTES {
                let Some(line) = this.take_line() else { break };
                this.line += 1;
                if let Err(failure) = this.encode_line(&line, &mut batch) {
                    if batch.is_empty() {
                        return this.fail(failure);
                    }
                    this.failing = Some(failure);
                    break;
                }
            }
            if !batch.is_empty() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(batch.freeze()))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            // A line already longer than the limit fails now, not when (if ever) it ends: the
            // buffer stays bounded. A trailing `\r` may still be the start of `\r\n`.
            let pending = this.buffer.len() - usize::from(this.buffer.ends_with(b"\r"));
            if pending > this.max_line {
                this.line += 1;
                let failure = this.too_long();
                return this.fail(failure);
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => this.ended = true,
                Some(Err(e)) => {
                    return this.fail(Failure::new(
                        Code::InvalidArgument,
                        format!("reading the request body: {e}"),
                    ));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// The reply side's view of the request stream: whether it failed, and why.
#[derive(Debug)]
pub(crate) struct InputWatch(Option<oneshot::Receiver<Failure>>);

impl InputWatch {
    /// Completes when the request stream fails; never, if it ends well.
    pub(crate) async fn failed(&mut self) -> Failure {
        if let Some(watch) = &mut self.0
            && let Ok(failure) = watch.await
        {
            self.0 = None;
            return failure;
        }
        // Ended well (the sender was dropped without a word), or already reported.
        self.0 = None;
        std::future::pending().await
    }

    /// The request stream's failure, if it failed already. A call failing right after
    /// its request stream did failed because of it, so this replaces the call's status.
    pub(crate) fn take_failure(&mut self) -> Option<Failure> {
        let failure = self.0.as_mut()?.try_recv().ok();
        if failure.is_some() {
            self.0 = None;
        }
        failure
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

    use super::*;
    use crate::gateway::json::JsonOptions;

    fn filter() -> MessageDescriptor {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gateway/testdata");
        let mut compiler = protox::Compiler::new([dir]).expect("include dir");
        compiler
            .include_imports(true)
            .open_file("binding.proto")
            .expect("test proto compiles");
        let pool: DescriptorPool = compiler.descriptor_pool();
        pool.get_message_by_name("gw.test.Filter")
            .expect("gw.test.Filter")
    }

    /// `text` sent in chunks of `size` bytes (then, if `endless`, nothing ever again), read
    /// to the end: the messages (as JSON), and the failure if the stream failed.
    async fn read(
        text: &str,
        size: usize,
        max_line: usize,
        endless: bool,
    ) -> (Vec<String>, Option<Failure>) {
        let (messages, _, failure) = read_chunks(text, size, max_line, endless).await;
        (messages, failure)
    }

    /// [`read`], and how many chunks of frames the messages came in.
    async fn read_chunks(
        text: &str,
        size: usize,
        max_line: usize,
        endless: bool,
    ) -> (Vec<String>, usize, Option<Failure>) {
        use tokio_stream::StreamExt as _;
        let chunks: Vec<Result<http_body::Frame<Bytes>, Infallible>> = text
            .as_bytes()
            .chunks(size)
            .map(|chunk| Ok(http_body::Frame::data(Bytes::copy_from_slice(chunk))))
            .collect();
        let rest = tokio_stream::pending().take(usize::from(endless));
        let chunks = tokio_stream::iter(chunks).chain(rest);
        let body = Body::new(http_body_util::StreamBody::new(chunks));
        let descriptor = filter();
        let (mut messages, mut watch) =
            super::messages(body, JsonOptions::new().reader(&descriptor), max_line);
        let mut out = Vec::new();
        let mut chunks = 0;
        while let Some(frame) = messages.frame().await {
            let Ok(frame) = frame else {
                assert!(messages.frame().await.is_none(), "nothing after an error");
                let failure = watch.take_failure().expect("the failure is told");
                return (out, chunks, Some(failure));
            };
            chunks += 1;
            let mut data = frame.into_data().expect("data frames only");
            assert!(!data.is_empty(), "no empty chunks");
            while !data.is_empty() {
                assert_eq!(data[0], 0, "uncompressed");
                let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
                assert!(data.len() >= 5 + len, "whole messages only");
                let message =
                    DynamicMessage::decode(descriptor.clone(), &data[5..5 + len]).unwrap();
                data = data.slice(5 + len..);
                out.push(
                    String::from_utf8(
                        JsonOptions::new()
                            .emit_unpopulated(false)
                            .write_json(&message)
                            .unwrap(),
                    )
                    .unwrap(),
                );
            }
        }
        assert!(watch.take_failure().is_none());
        (out, chunks, None)
    }

    #[tokio::test]
    async fn lines_at_hand_go_out_together() {
        let line = "{\"text\":\"a line of the request stream\"}\n";
        let text = line.repeat(5000);
        // All of it in one HTTP chunk: chunks of up to BATCH_BYTES of frames, not 5000.
        let (messages, chunks, failure) = read_chunks(&text, text.len(), 64, false).await;
        assert!(failure.is_none());
        assert_eq!(messages.len(), 5000);
        let framed = 5000 * (5 + 2 + "a line of the request stream".len());
        assert_eq!(chunks, framed.div_ceil(BATCH_BYTES), "{chunks} chunks");
        // A line an HTTP chunk: a chunk of frames each (the body is read only when no whole
        // line is at hand).
        let (messages, chunks, _) = read_chunks(&line.repeat(10), line.len(), 64, false).await;
        assert_eq!((messages.len(), chunks), (10, 10));
    }

    #[tokio::test]
    async fn lines_are_messages_however_the_body_is_cut() {
        let text = "{\"text\":\"a\"}\r\n\n \t\r\n{\"minPrice\": 2}\n{\"text\":\"c\"}";
        for size in 1..=text.len() {
            let (messages, failure) = read(text, size, 64, false).await;
            assert!(failure.is_none(), "{size}: {failure:?}");
            assert_eq!(
                messages,
                [r#"{"text":"a"}"#, r#"{"minPrice":2}"#, r#"{"text":"c"}"#],
                "chunks of {size}"
            );
        }
        for empty in ["", "\n", "\r\n\r\n", "  "] {
            assert_eq!(read(empty, 1, 64, false).await.0, Vec::<String>::new());
        }
    }

    #[tokio::test]
    async fn a_bad_line_ends_the_stream_naming_its_number() {
        let text = "{\"text\":\"a\"}\n\n{\"text\": 1}\n{\"text\":\"d\"}\n";
        for size in [1, 7, text.len()] {
            let (messages, failure) = read(text, size, 64, false).await;
            assert_eq!(messages, [r#"{"text":"a"}"#]);
            let failure = failure.expect("fails");
            assert_eq!(failure.code, Code::InvalidArgument);
            assert!(
                failure
                    .message
                    .starts_with("line 3: invalid JSON request message"),
                "{}",
                failure.message
            );
        }
    }

    #[tokio::test]
    async fn lines_over_the_limit_fail_before_they_end() {
        // Exactly the limit, with `\r\n` split anywhere: fine.
        let exact = format!("{{\"text\":\"{}\"}}\r\n", "x".repeat(20 - 11));
        assert_eq!(exact.len(), 22);
        for size in 1..=exact.len() {
            assert!(read(&exact, size, 20, false).await.1.is_none(), "{size}");
        }
        // Longer, and the line (and the body) never ends: refused once 21 bytes are in.
        let endless = format!("{{}}\n{{\"text\":\"{}", "x".repeat(100));
        let read = read(&endless, 3, 20, true);
        let (messages, failure) = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("fails without the line's end");
        assert_eq!(messages, ["{}"]);
        let failure = failure.expect("fails");
        assert_eq!(failure.code, Code::ResourceExhausted);
        assert_eq!(failure.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            failure.message.starts_with("line 2: "),
            "{}",
            failure.message
        );
    }
}
