//! The `/metrics` body, streamed: the exposition is written on a blocking thread in chunks of
//! [`CHUNK_BYTES`] (gzip-compressed there when the scraper accepts it) and sent as they are
//! ready, so a scrape of 100,000 series never holds its 20-odd MB of text, and two scrapers
//! answered from one collection never hold two copies of it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::Body;
use crate::mapping::MappingSet;
use crate::render::{write_exposition, Snapshot};
use crate::scrape::Runtime;

/// Text per chunk before compression.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks written ahead of the connection: the most a slow scraper makes the exporter hold.
const CHUNKS_AHEAD: usize = 2;

/// The body of a scrape answer: the snapshot as rendered with the mappings of the runtime that
/// made it, then the self-metrics' texts.
pub fn stream(
    snapshot: Arc<Snapshot>,
    made_by: Arc<Runtime>,
    self_metric_texts: BTreeMap<String, String>,
    gzip: bool,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        write(
            &snapshot,
            &made_by.mappings,
            &self_metric_texts,
            gzip,
            &mut |bytes| {
                // A scraper that went away stops the sending, not the writing (which is finite).
                let _ = tx.blocking_send(bytes);
            },
        );
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    StreamBody::new(frames).boxed_unsync()
}

/// Write the exposition as byte chunks, gzip-compressed when asked.
pub fn write(
    snapshot: &Snapshot,
    mappings: &MappingSet,
    self_metric_texts: &BTreeMap<String, String>,
    gzip: bool,
    send: &mut dyn FnMut(Bytes),
) {
    if !gzip {
        write_exposition(
            snapshot,
            mappings,
            self_metric_texts,
            CHUNK_BYTES,
            &mut |chunk| send(Bytes::from(chunk)),
        );
        return;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    write_exposition(
        snapshot,
        mappings,
        self_metric_texts,
        CHUNK_BYTES,
        &mut |chunk| {
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(chunk.as_bytes());
            let compressed = std::mem::take(encoder.get_mut());
            if !compressed.is_empty() {
                send(Bytes::from(compressed));
            }
        },
    );
    if let Ok(rest) = encoder.finish() {
        send(Bytes::from(rest));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::cloud::Cloud;
    use crate::render::{render, self_metric_texts, SelfMetrics};

    #[test]
    fn plain_and_gzip_chunks_carry_the_whole_exposition() {
        let metrics = SelfMetrics::new();
        for api in ["DescribeMetricLast", "GetMonitorData", "GetMetricData"] {
            metrics.observe_request::<()>(
                Cloud::Aliyun,
                api,
                &Ok(()),
                std::time::Duration::from_millis(5),
            );
        }
        let mappings = MappingSet::embedded().unwrap();
        let snapshot = Snapshot::default();
        let whole = render(&snapshot, &mappings, &metrics).unwrap();
        let texts = self_metric_texts(&metrics).unwrap();
        let mut plain = Vec::new();
        write(&snapshot, &mappings, &texts, false, &mut |b| plain.push(b));
        assert_eq!(plain.concat(), whole.as_bytes());
        let mut zipped = Vec::new();
        write(&snapshot, &mappings, &texts, true, &mut |b| zipped.push(b));
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&zipped.concat()[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, whole);
    }
}
