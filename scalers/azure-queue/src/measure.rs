//! Turning queue readings into a queue length and in-flight count, per strategy. The reads go
//! through [`QueueSource`], so the strategy logic is tested without a service.

use std::future::Future;

use crate::config::QueueLengthStrategy;
use crate::errors::AccessError;

/// The most messages one peek returns (a service limit).
pub const PEEK_LIMIT: u32 = 32;

/// The two reads a queue offers the scaler.
pub trait QueueSource: Send + Sync {
    /// The queue's approximate message count: never lower than the real count, and it
    /// includes invisible (received, not yet deleted) messages.
    fn approximate_count(&self) -> impl Future<Output = Result<u64, AccessError>> + Send;

    /// How many messages are visible right now, peeking at most `limit`.
    fn peek_visible(&self, limit: u32) -> impl Future<Output = Result<u32, AccessError>> + Send;
}

/// One measurement of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueReading {
    /// The queue length the strategy reports.
    pub length: u64,
    /// Messages received but not finished, when they can be known.
    pub in_flight: Option<u64>,
}

/// Measures `source` with `strategy`.
///
/// `all` costs one request. `visibleonly` reads the approximate count first: an empty queue
/// needs no peek (Azure bills per request); otherwise it peeks up to 32 messages, which gives an
/// exact visible count below 32 and so an in-flight count (approximate minus visible); at 32 or
/// more it falls back to the approximate count, like KEDA.
pub async fn measure_queue<S: QueueSource>(
    source: &S,
    strategy: QueueLengthStrategy,
) -> Result<QueueReading, AccessError> {
    let approximate = source.approximate_count().await?;
    if approximate == 0 {
        return Ok(QueueReading {
            length: 0,
            in_flight: Some(0),
        });
    }
    match strategy {
        // The approximate count already includes invisible messages, so they keep the trigger
        // active; how many of them are in flight is not known without another request.
        QueueLengthStrategy::All => Ok(QueueReading {
            length: approximate,
            in_flight: None,
        }),
        QueueLengthStrategy::VisibleOnly => {
            let visible = source.peek_visible(PEEK_LIMIT).await?;
            if visible >= PEEK_LIMIT {
                Ok(QueueReading {
                    length: approximate,
                    in_flight: None,
                })
            } else {
                let visible = u64::from(visible);
                Ok(QueueReading {
                    length: visible,
                    in_flight: Some(approximate.saturating_sub(visible)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// An in-memory queue: `visible` messages can be peeked, `invisible` are hidden, and the
    /// approximate count may overstate by `overstate`.
    struct MemoryQueue {
        visible: u64,
        invisible: u64,
        overstate: u64,
        peeks: AtomicU32,
    }

    impl MemoryQueue {
        fn new(visible: u64, invisible: u64) -> Self {
            Self {
                visible,
                invisible,
                overstate: 0,
                peeks: AtomicU32::new(0),
            }
        }
    }

    impl QueueSource for MemoryQueue {
        async fn approximate_count(&self) -> Result<u64, AccessError> {
            Ok(self.visible + self.invisible + self.overstate)
        }

        async fn peek_visible(&self, limit: u32) -> Result<u32, AccessError> {
            self.peeks.fetch_add(1, Ordering::SeqCst);
            Ok(u32::try_from(self.visible).unwrap_or(u32::MAX).min(limit))
        }
    }

    fn run(queue: &MemoryQueue, strategy: QueueLengthStrategy) -> QueueReading {
        futures::executor::block_on(measure_queue(queue, strategy)).unwrap()
    }

    #[test]
    fn all_counts_visible_and_invisible_with_one_request() {
        let queue = MemoryQueue::new(3, 4);
        assert_eq!(
            run(&queue, QueueLengthStrategy::All),
            QueueReading {
                length: 7,
                in_flight: None
            }
        );
        assert_eq!(queue.peeks.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn visible_only_reports_invisible_as_in_flight() {
        let queue = MemoryQueue::new(3, 4);
        assert_eq!(
            run(&queue, QueueLengthStrategy::VisibleOnly),
            QueueReading {
                length: 3,
                in_flight: Some(4)
            }
        );
        let only_invisible = MemoryQueue::new(0, 2);
        assert_eq!(
            run(&only_invisible, QueueLengthStrategy::VisibleOnly),
            QueueReading {
                length: 0,
                in_flight: Some(2)
            }
        );
    }

    #[test]
    fn visible_only_falls_back_to_the_approximate_count_at_32() {
        for visible in [32, 33, 100] {
            let queue = MemoryQueue::new(visible, 5);
            assert_eq!(
                run(&queue, QueueLengthStrategy::VisibleOnly),
                QueueReading {
                    length: visible + 5,
                    in_flight: None
                }
            );
        }
        let queue = MemoryQueue::new(31, 0);
        assert_eq!(run(&queue, QueueLengthStrategy::VisibleOnly).length, 31);
    }

    #[test]
    fn empty_queue_needs_no_peek_and_has_nothing_in_flight() {
        for strategy in [QueueLengthStrategy::All, QueueLengthStrategy::VisibleOnly] {
            let queue = MemoryQueue::new(0, 0);
            assert_eq!(
                run(&queue, strategy),
                QueueReading {
                    length: 0,
                    in_flight: Some(0)
                }
            );
            assert_eq!(queue.peeks.load(Ordering::SeqCst), 0);
        }
    }

    #[test]
    fn an_overstated_count_never_goes_negative() {
        let mut queue = MemoryQueue::new(2, 0);
        queue.overstate = 1;
        assert_eq!(
            run(&queue, QueueLengthStrategy::VisibleOnly),
            QueueReading {
                length: 2,
                in_flight: Some(1)
            }
        );
    }
}
