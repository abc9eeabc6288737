//! Reading a request body within a limit and a memory budget, and undoing
//! its `Content-Encoding`.
//!
//! The size limit applies twice: to the bytes on the wire (a declared
//! `Content-Length` past it is refused before anything is read; a chunked
//! body is refused as soon as it passes it) and to the decompressed bytes, so
//! a small compressed bomb is refused as soon as it inflates past the limit
//! instead of after. Relay accepts `gzip`, `deflate` (zlib, or raw deflate as
//! some clients send) and `br`; so do we.
//!
//! Every body draws on the process's memory budget
//! (`limits.max_inflight_bytes`, counted in KiB permits of a semaphore) for
//! as long as the handler holds its [`BodyPermit`]: until its delivery is
//! committed. The budget is charged as bytes arrive and as they inflate, not
//! by what `Content-Length` promises: a sender that declares 20 MiB and sends
//! nothing holds nothing. A body that does not fit is refused at once with
//! 503 and `Retry-After`, the way Relay sheds load when memory runs short.
//!
//! Decoding a whole body is CPU work: [`Body::decode`] is synchronous and
//! meant for a blocking thread. Only [`Body::first_line`] decodes on the
//! async runtime, and only a bounded prefix.

use std::io::Read;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::IngestError;

/// The share of the memory budget a body holds; released on drop.
#[derive(Debug)]
pub struct BodyPermit {
    held: Option<OwnedSemaphorePermit>,
    budget: Arc<Semaphore>,
}

/// Permits (KiB) for `bytes`, at least one.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

impl BodyPermit {
    /// A permit holding nothing yet from `budget`.
    pub fn new(budget: &Arc<Semaphore>) -> BodyPermit {
        BodyPermit {
            held: None,
            budget: budget.clone(),
        }
    }

    /// Grows the permit to cover `bytes` in all, or refuses. Synchronous and
    /// never waits, so it can be called from a blocking thread.
    pub fn cover(&mut self, bytes: usize) -> Result<(), IngestError> {
        let held = self
            .held
            .as_ref()
            .map_or(0, |permit| permit.num_permits() as u32);
        let wanted = kib(bytes);
        if wanted <= held {
            return Ok(());
        }
        let more = self
            .budget
            .clone()
            .try_acquire_many_owned(wanted - held)
            .map_err(|_| IngestError::OverBudget)?;
        match &mut self.held {
            Some(permit) => permit.merge(more),
            None => self.held = Some(more),
        }
        Ok(())
    }

    /// The bytes this permit covers.
    pub fn covered(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, |permit| permit.num_permits() * 1024)
    }
}

/// A request body being read: the raw bytes so far, its encodings and the
/// budget they hold.
#[derive(Debug)]
pub struct Body {
    raw: Vec<u8>,
    limit: usize,
    encodings: Vec<String>,
    incoming: Option<axum::body::Body>,
    permit: BodyPermit,
}

/// A decoded body and the budget it holds.
#[derive(Debug)]
pub struct Decoded {
    /// The decompressed bytes.
    pub bytes: Vec<u8>,
    /// Held until the delivery is committed.
    pub permit: BodyPermit,
}

impl Body {
    /// Starts reading `body` (at most `limit` bytes on the wire and decoded);
    /// refuses a declared `Content-Length` past the limit and an unknown
    /// `Content-Encoding` before reading anything.
    pub fn new(
        headers: &HeaderMap,
        body: axum::body::Body,
        limit: usize,
        budget: &Arc<Semaphore>,
    ) -> Result<Body, IngestError> {
        if let Some(length) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            && length > limit as u64
        {
            return Err(IngestError::TooLarge { limit });
        }
        let encodings = headers
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|encoding| encoding.trim().to_ascii_lowercase())
            .filter(|encoding| !encoding.is_empty() && encoding != "identity")
            .collect::<Vec<_>>();
        if let Some(unknown) = encodings
            .iter()
            .find(|encoding| !KNOWN_ENCODINGS.contains(&encoding.as_str()))
        {
            return Err(IngestError::UnsupportedEncoding(unknown.clone()));
        }
        Ok(Body {
            raw: Vec::new(),
            limit,
            encodings,
            incoming: Some(body),
            permit: BodyPermit::new(budget),
        })
    }

    /// Reads the next chunk off the connection, charging it to the budget;
    /// `false` at the end of the body.
    async fn read_chunk(&mut self) -> Result<bool, IngestError> {
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(false);
        };
        loop {
            match incoming.frame().await {
                None => {
                    self.incoming = None;
                    return Ok(false);
                }
                Some(Err(error)) => return Err(IngestError::BodyRead(error)),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if self.raw.len() + data.len() > self.limit {
                        return Err(IngestError::TooLarge { limit: self.limit });
                    }
                    self.permit.cover(self.raw.len() + data.len())?;
                    self.raw.extend_from_slice(&data);
                    return Ok(true);
                }
            }
        }
    }

    /// Whether the body is not compressed and at most `max` bytes long
    /// (as read so far).
    pub fn is_small(&self, max: usize) -> bool {
        self.encodings.is_empty() && self.raw.len() <= max
    }

    /// Reads the rest of the body off the connection.
    pub async fn read_all(&mut self) -> Result<(), IngestError> {
        while self.read_chunk().await? {}
        Ok(())
    }

    /// The decoded body's first line (without its `\n`; the whole body when
    /// it has none), reading only as much of the body as it takes. A first
    /// line longer than `max_line` is refused, and so is a compressed prefix
    /// that does not inflate to a line in proportion.
    pub async fn first_line(&mut self, max_line: usize) -> Result<Vec<u8>, IngestError> {
        let too_long = || IngestError::HeaderTooLong { limit: max_line };
        // A compressed line of `max_line` bytes takes at most about that
        // many raw bytes (incompressible data grows by a few bytes per
        // block), so a prefix twice as long without a line has none.
        let raw_cap = max_line.saturating_mul(2).saturating_add(1024);
        let mut tried_at = 0;
        loop {
            let more = self.read_chunk().await?;
            // Decoding restarts from the first byte, so a compressed prefix
            // is tried again only once it has doubled: the work stays
            // linear however small the chunks.
            let ready = !more || tried_at == 0 || self.raw.len() >= tried_at * 2;
            if !ready {
                continue;
            }
            tried_at = self.raw.len();
            let prefix = self.decoded_prefix(max_line + 1)?;
            if let Some(newline) = prefix.iter().position(|&b| b == b'\n') {
                return Ok(prefix[..newline].to_vec());
            }
            if prefix.len() > max_line {
                return Err(too_long());
            }
            if !more {
                return Ok(prefix);
            }
            if self.raw.len() > raw_cap {
                return Err(too_long());
            }
        }
    }

    /// Up to `max` decoded bytes from the raw bytes read so far; a stream
    /// cut short is not an error here.
    fn decoded_prefix(&self, max: usize) -> Result<Vec<u8>, IngestError> {
        let mut data = std::borrow::Cow::Borrowed(self.raw.as_slice());
        for encoding in self.encodings.iter().rev() {
            let mut out = Vec::new();
            let result = decoder(encoding, &data, false)?
                .take(max as u64)
                .read_to_end(&mut out);
            if let Err(error) = result
                && out.is_empty()
                && error.kind() != std::io::ErrorKind::UnexpectedEof
            {
                return Err(IngestError::BadCompression {
                    encoding: static_name(encoding),
                    source: error,
                });
            }
            data = std::borrow::Cow::Owned(out);
        }
        let mut data = data.into_owned();
        data.truncate(max);
        Ok(data)
    }

    /// Decodes the whole body (after [`Body::read_all`]), charging what it
    /// inflates to as it inflates. CPU-bound: call it on a blocking thread.
    pub fn decode(self) -> Result<Decoded, IngestError> {
        let Body {
            raw,
            limit,
            encodings,
            mut permit,
            ..
        } = self;
        let raw_len = raw.len();
        let mut data = raw;
        // Encodings are listed in the order they were applied: undo the last first.
        for encoding in encodings.iter().rev() {
            data = decode_charged(encoding, &data, limit, |size| permit.cover(raw_len + size))?;
        }
        Ok(Decoded {
            bytes: data,
            permit,
        })
    }
}

/// What [`decode`] undoes.
const KNOWN_ENCODINGS: [&str; 4] = ["gzip", "x-gzip", "deflate", "br"];

fn static_name(encoding: &str) -> &'static str {
    match encoding {
        "gzip" | "x-gzip" => "gzip",
        "deflate" => "deflate",
        "br" => "br",
        _ => "unknown",
    }
}

/// A reader undoing one layer of `encoding` over `data`. `deflate` is zlib
/// when the first two bytes are a zlib header (unless `raw_deflate`), raw
/// deflate otherwise.
fn decoder<'a>(
    encoding: &str,
    data: &'a [u8],
    raw_deflate: bool,
) -> Result<Box<dyn Read + 'a>, IngestError> {
    Ok(match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(data)),
        "deflate" if !raw_deflate && is_zlib_header(data) => {
            Box::new(flate2::read::ZlibDecoder::new(data))
        }
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(data)),
        "br" => Box::new(brotli::Decompressor::new(data, 4096)),
        other => return Err(IngestError::UnsupportedEncoding(other.to_owned())),
    })
}

/// RFC 1950: compression method 8, a window of at most 32 KiB, and a check
/// making the first two bytes a multiple of 31.
fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Decodes one layer of `encoding`, refusing output past `limit`.
pub fn decode(encoding: &str, data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    decode_charged(encoding, data, limit, |_| Ok(()))
}

/// Decodes one layer, telling `charge` the output size as it grows (in
/// steps of 64 KiB), so a bomb is refused by the budget as it inflates.
/// Deflate that looks like zlib but is not is read again as raw deflate.
fn decode_charged(
    encoding: &str,
    data: &[u8],
    limit: usize,
    mut charge: impl FnMut(usize) -> Result<(), IngestError>,
) -> Result<Vec<u8>, IngestError> {
    match decode_layer(encoding, data, limit, false, &mut charge) {
        Err(IngestError::BadCompression { .. })
            if encoding == "deflate" && is_zlib_header(data) =>
        {
            decode_layer(encoding, data, limit, true, &mut charge)
        }
        result => result,
    }
}

fn decode_layer(
    encoding: &str,
    data: &[u8],
    limit: usize,
    raw_deflate: bool,
    charge: &mut impl FnMut(usize) -> Result<(), IngestError>,
) -> Result<Vec<u8>, IngestError> {
    const STEP: usize = 64 * 1024;
    let mut reader = decoder(encoding, data, raw_deflate)?;
    let mut out = Vec::new();
    let mut buffer = vec![0u8; STEP];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(IngestError::BadCompression {
                    encoding: static_name(encoding),
                    source,
                });
            }
        };
        if out.len() + read > limit {
            return Err(IngestError::TooLarge { limit });
        }
        charge(out.len() + read)?;
        out.extend_from_slice(&buffer[..read]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            writer.write_all(data).unwrap();
        }
        out
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    /// Every accepted encoding round-trips.
    #[test]
    fn encodings() {
        let data = b"{\"event_id\":\"x\"}".repeat(10);
        assert_eq!(decode("gzip", &gzip(&data), 1000).unwrap(), data);
        assert_eq!(decode("deflate", &zlib(&data), 1000).unwrap(), data);
        assert_eq!(decode("deflate", &raw_deflate(&data), 1000).unwrap(), data);
        assert_eq!(decode("br", &brotli(&data), 1000).unwrap(), data);
    }

    /// A bomb is refused once it inflates past the limit.
    #[test]
    fn inflating_past_the_limit_is_too_large() {
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decode("gzip", &bomb, 1000),
            Err(IngestError::TooLarge { limit: 1000 })
        ));
    }

    /// Garbage and unknown encodings say what is wrong.
    #[test]
    fn bad_input() {
        assert!(matches!(
            decode("gzip", b"nope", 100),
            Err(IngestError::BadCompression {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            decode("br", b"\xff\xff\xff", 100),
            Err(IngestError::BadCompression { encoding: "br", .. })
        ));
        assert!(
            matches!(decode("zstd", b"", 100), Err(IngestError::UnsupportedEncoding(e)) if e == "zstd")
        );
    }

    /// A body that declares 20 MiB and sends a few bytes holds a few KiB of
    /// the budget, not 20 MiB.
    #[tokio::test]
    async fn the_budget_is_charged_as_bytes_arrive() {
        let budget = Arc::new(Semaphore::new(64));
        let declared = headers(&[("content-length", "20971520")]);
        let mut body = Body::new(
            &declared,
            axum::body::Body::from(&b"{}\n"[..]),
            usize::MAX,
            &budget,
        )
        .unwrap();
        body.read_all().await.unwrap();
        assert_eq!(budget.available_permits(), 63);
        drop(body);
        assert_eq!(budget.available_permits(), 64);
        // Past the limit before reading: refused without a permit.
        let refused = Body::new(
            &declared,
            axum::body::Body::empty(),
            1 << 20,
            &Arc::new(Semaphore::new(1)),
        );
        assert!(matches!(refused, Err(IngestError::TooLarge { .. })));
    }

    /// A bomb inside the size limit is refused by the budget as it
    /// inflates, before it is all in memory.
    #[tokio::test]
    async fn inflating_is_charged_to_the_budget() {
        let budget = Arc::new(Semaphore::new(256)); // 256 KiB
        let bomb = gzip(&vec![b'a'; 4 << 20]);
        let mut body = Body::new(
            &headers(&[("content-encoding", "gzip")]),
            axum::body::Body::from(bomb),
            8 << 20,
            &budget,
        )
        .unwrap();
        body.read_all().await.unwrap();
        assert!(matches!(body.decode(), Err(IngestError::OverBudget)));
        assert_eq!(budget.available_permits(), 256);
    }

    /// The first line is found in plain and compressed bodies; a line past
    /// the cap is refused.
    #[tokio::test]
    async fn first_line() {
        let budget = Arc::new(Semaphore::new(1 << 20));
        let envelope = b"{\"dsn\":\"x\"}\n{\"type\":\"event\"}\n{}\n".to_vec();
        for (encoding, data) in [
            ("identity", envelope.clone()),
            ("gzip", gzip(&envelope)),
            ("deflate", zlib(&envelope)),
            ("deflate", raw_deflate(&envelope)),
            ("br", brotli(&envelope)),
        ] {
            let mut map = HeaderMap::new();
            map.insert("content-encoding", encoding.parse().unwrap());
            let mut body = Body::new(&map, axum::body::Body::from(data), 1 << 20, &budget).unwrap();
            let line = body.first_line(100).await.unwrap();
            assert_eq!(line, b"{\"dsn\":\"x\"}", "{encoding}");
            body.read_all().await.unwrap();
            assert_eq!(body.decode().unwrap().bytes, envelope, "{encoding}");
        }
        let long = [vec![b'x'; 5000], b"\n".to_vec()].concat();
        for data in [long.clone(), gzip(&long)] {
            let encoding = if data == long { "identity" } else { "gzip" };
            let mut map = HeaderMap::new();
            map.insert("content-encoding", encoding.parse().unwrap());
            let mut body = Body::new(&map, axum::body::Body::from(data), 1 << 20, &budget).unwrap();
            assert!(matches!(
                body.first_line(100).await,
                Err(IngestError::HeaderTooLong { limit: 100 })
            ));
        }
    }
}
